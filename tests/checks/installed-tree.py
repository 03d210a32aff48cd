#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Cross-part: what `install.sh --root` writes (PAM edit, udev rule, manifest, TOTP store) passes
# the compliance checks, and each later change to it is caught.
# Usage: installed-tree.py SOURCE_ROOT BUILD_ROOT CHECK_TREE
import json
import os
import subprocess
import sys
import tempfile

SRC, BUILD, CHECK_TREE = sys.argv[1:4]

COMMON_AUTH = """#
# /etc/pam.d/common-auth - authentication settings common to all services
#
# here are the per-package modules (the "Primary" block)
auth\t[success=1 default=ignore]\tpam_unix.so nullok
# here's the fallback if no module succeeds
auth\trequisite\t\t\tpam_deny.so
# prime the stack with a positive return value if there isn't one already;
# this avoids us returning an error just because nothing sets a success code
# since the modules above will each just jump around
auth\trequired\t\t\tpam_permit.so
# and here are more per-package modules (the "Additional" block)
auth\toptional\t\t\tpam_cap.so
# end of pam-auth-update config
"""


def write(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def checks(root):
    p = subprocess.run([CHECK_TREE, root], capture_output=True, text=True, timeout=30)
    assert p.returncode in (0, 1), f"check-tree exit {p.returncode}: {p.stderr}"
    data = json.loads(p.stdout)
    return {c["id"]: c for c in data["checks"]}


def expect(c, status, needle=""):
    assert c["status"] == status and needle in c["detail"], \
        f"{c['id']}: {c['status']} \"{c['detail']}\", wanted {status} with \"{needle}\""


def main():
    with tempfile.TemporaryDirectory(prefix="mg-checks-tree-") as tmp:
        root = os.path.join(tmp, "root")
        write(f"{root}/etc/passwd", "root:x:0:0:root:/root:/bin/bash\n"
              "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
              "alice:x:1000:1000:Alice:/home/alice:/bin/bash\n")
        write(f"{root}/etc/group", "root:x:0:\nsudo:x:27:alice\nalice:x:1000:\n")
        write(f"{root}/etc/pam.d/common-auth", COMMON_AUTH)
        write(f"{root}/etc/pam.d/login", "auth optional pam_faildelay.so delay=3000000\n"
              "auth requisite pam_nologin.so\n@include common-auth\n")
        write(f"{root}/etc/pam.d/sshd", "@include common-auth\naccount required pam_nologin.so\n")
        write(f"{root}/etc/pam.d/gdm-password", "auth requisite pam_nologin.so\n"
              "auth required pam_succeed_if.so user != root quiet_success\n"
              "@include common-auth\nauth optional pam_gnome_keyring.so\n")

        inst = subprocess.run(
            ["bash", os.path.join(SRC, "installer/install.sh"), "--root", root, "--build-dir", BUILD,
             "--enroll-later", "--terminal-id", "tree-1", "--no-start", "-q"],
            capture_output=True, text=True, timeout=120)
        assert inst.returncode == 0, f"install.sh exit {inst.returncode}: {inst.stderr}"

        c = checks(root)
        expect(c["mfa.pam_stack"], "pass", "login: pam_unix.so at common-auth:5, then pam_mynaguard")
        assert "sshd:" in c["mfa.pam_stack"]["detail"] and "gdm-password:" in c["mfa.pam_stack"]["detail"]
        expect(c["agent.integrity"], "pass", "files match")
        expect(c["usb.default_deny"], "pass", "udev rule unmodified")
        expect(c["usb.no_unapproved_storage"], "pass")
        expect(c["mfa.enrollment"], "fail", "not enrolled: alice")
        expect(c["net.isolation"], "not_applicable", "disabled by policy")

        # alice enrolls (with the real mynaguardctl): the store now satisfies the check
        ctl = os.path.join(BUILD, "ctl/mynaguardctl")
        # alice exists in the tree's passwd only (nss_wrapper); the secret goes on stdin
        env = dict(os.environ, LD_PRELOAD="libnss_wrapper.so",
                   NSS_WRAPPER_PASSWD=f"{root}/etc/passwd", NSS_WRAPPER_GROUP=f"{root}/etc/group",
                   ASAN_OPTIONS=(os.environ.get("ASAN_OPTIONS", "")
                                 + ":verify_asan_link_order=0").lstrip(":"))
        enr = subprocess.run([ctl, "totp", "enroll", "alice", "--store",
                              f"{root}/var/lib/mynaguard/totp", "--secret-file", "-", "--no-qr"],
                             input="JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\n", env=env,
                             capture_output=True, text=True, timeout=30)
        assert enr.returncode == 0, f"enroll exit {enr.returncode}: {enr.stderr}"
        # pending until a code from the app is typed once (mynaguardctl totp verify)
        expect(checks(root)["mfa.enrollment"], "fail",
               "not enrolled: alice (enrollment pending verification)")
        code = subprocess.run(["oathtool", "--totp", "-b", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"],
                              capture_output=True, text=True, check=True).stdout
        ver = subprocess.run([ctl, "totp", "verify", "alice", "--store",
                              f"{root}/var/lib/mynaguard/totp"],
                             input=code, env=env, capture_output=True, text=True, timeout=30)
        assert ver.returncode == 0, f"verify exit {ver.returncode}: {ver.stderr}"
        expect(checks(root)["mfa.enrollment"], "pass", "1 interactive user enrolled")

        # later changes are caught: an edited udev rule, a policy switched to audit, the code step
        # made optional
        with open(f"{root}/etc/udev/rules.d/70-mynaguard.rules", "a") as f:
            f.write("# disabled\n")
        c = checks(root)
        expect(c["usb.default_deny"], "fail", "modified: /etc/udev/rules.d/70-mynaguard.rules")
        expect(c["agent.integrity"], "fail", "modified: /etc/udev/rules.d/70-mynaguard.rules")

        pol = f"{root}/etc/mynaguard/policy.conf"
        text = open(pol).read().replace("mode = enforce", "mode = audit")
        write(pol, text)
        c = checks(root)
        expect(c["usb.default_deny"], "fail", "policy in audit mode")
        expect(c["agent.integrity"], "fail", "modified: /etc/mynaguard/policy.conf")

        ca = f"{root}/etc/pam.d/common-auth"
        text = open(ca).read()
        assert "required\t\t\tpam_mynaguard.so" in text or "pam_mynaguard.so" in text, text
        lines = [ln.replace("required", "optional", 1) if "pam_mynaguard.so" in ln else ln
                 for ln in text.splitlines(keepends=True)]
        write(ca, "".join(lines))
        expect(checks(root)["mfa.pam_stack"], "fail", "lets a failed code through")
    print("ok: installed tree passes the checks; changes to it are caught")
    return 0


if __name__ == "__main__":
    sys.exit(main())
