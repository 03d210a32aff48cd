#!/bin/bash
# SPDX-License-Identifier: MIT
# Guest side of vm-install.py, in a systemd-booted Debian 12: install, services, a real login
# with the code, USB, idempotency, uninstall restoring /etc/pam.d byte for byte.
set -u
. /root/vmtest/lib.sh
vm_ctl_open
cd /root/mynaguard || exit 1
SECRET=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
echo "vm-guest: start after $(cut -d' ' -f1 /proc/uptime) s"

# PAM, udev, modprobe and systemd configuration: paths, types, modes, owners, contents.
config_state() {
	for d in /etc/pam.d /etc/udev/rules.d /etc/modprobe.d /etc/systemd/system /usr/share/pam-configs; do
		[ -d "$d" ] || continue
		find "$d" -path /etc/systemd/system/mynaguard-vmtest.service -prune -o -printf '%p %y %m %U %G %l\n' | sort
		find "$d" -type f ! -name mynaguard-vmtest.service -print0 | sort -z | xargs -0 -r sha256sum
	done
}
tree_state() {
	config_state
	for d in /usr/sbin /usr/local/libexec /etc/mynaguard /var/lib/mynaguard /var/spool/mynaguard; do
		[ -d "$d" ] && find "$d" -printf '%p %y %m %U %G\n' | sort
	done
	find /usr/lib/x86_64-linux-gnu/security -name 'pam_mynaguard*' -printf '%p %m %U %G\n'
}

# wait_secs SECONDS COMMAND...: poll every second (TCG is slow: vm_wait counts iterations)
wait_secs() {
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		[ "$SECONDS" -lt "$end" ] || return 1
		sleep 1
	done
}

useradd -m -G sudo -s /bin/bash alice
echo 'alice:Pa55-word-vm' | chpasswd
before=$(config_state)
cp /etc/pam.d/common-auth /root/common-auth.before

# 0. this guest is also the city's collector host: collector, CA, server certificate, token
rc=0
installer/collector-install.sh --build-dir build --server-name localhost --server-name 127.0.0.1 \
	--ingest-listen 127.0.0.1:8443 >/root/collector.log 2>&1 || rc=$?
sed 's/^/collector-install| /' /root/collector.log
vm_check "collector-install.sh exits 0" [ "$rc" -eq 0 ]
vm_check "mynaguard-collector.service is active" vm_wait 30 systemctl -q is-active mynaguard-collector.service
mynaguard-ca --dir /var/lib/mynaguard-ca issue vm-terminal --out /root/cert >/dev/null
CA=/var/lib/mynaguard-ca/ca.pem

# 1. nobody enrolled: everything installed, the code step not on
rc=0
installer/install.sh --build-dir build --terminal-id vm-terminal --collector https://127.0.0.1:8443 \
	--ca "$CA" --cert /root/cert/vm-terminal.pem --key /root/cert/vm-terminal.key >/root/install1.log 2>&1 || rc=$?
sed 's/^/install1| /' /root/install1.log
vm_check "install without an enrolled admin exits 3" [ "$rc" -eq 3 ]
vm_check "install without an enrolled admin leaves common-auth alone" cmp -s /etc/pam.d/common-auth /root/common-auth.before
vm_check "mynaguardd.service is active" vm_wait 30 systemctl -q is-active mynaguardd.service
vm_check "mynaguardd.service is enabled" systemctl -q is-enabled mynaguardd.service
vm_check "mynaguard-uplink.service is active" vm_wait 30 systemctl -q is-active mynaguard-uplink.service
vm_check "the uplink runs as user mynaguard" bash -c '[ "$(ps -o uid= -C mynaguard-uplink | head -1 | tr -d " ")" = "$(id -u mynaguard)" ]'
vm_check "root hubs have interface_authorized_default=0" roothubs_deny
vm_check "the manifest verifies" bash -c "sha256sum --quiet -c /var/lib/mynaguard/installed.sha256"

# 2. alice (group sudo) enrolls; the next run switches the code step on through pam-auth-update
printf '%s\n' "$SECRET" | mynaguardctl totp enroll alice --secret-file - --no-qr >/dev/null 2>&1
# the code of the step before: the login below uses the current one (one-time rule)
oathtool --totp -b "$SECRET" --now "@$(($(date +%s) - 30))" | mynaguardctl totp verify alice >/dev/null 2>&1
rc=0
installer/install.sh --build-dir build >/root/install2.log 2>&1 || rc=$?
sed 's/^/install2| /' /root/install2.log
vm_check "install with alice enrolled exits 0" [ "$rc" -eq 0 ]
sed 's/^/common-auth| /' /etc/pam.d/common-auth
unix_line=$(grep -n 'pam_unix.so' /etc/pam.d/common-auth | head -1 | cut -d: -f1)
mg_line=$(grep -n 'pam_mynaguard.so' /etc/pam.d/common-auth | head -1 | cut -d: -f1)
vm_check "pam-auth-update put pam_mynaguard after pam_unix in common-auth" test "${mg_line:-0}" -gt "${unix_line:-999}"
mynaguardctl status 2>&1 | sed 's/^/status| /'

# 3. a real login: pamtester on the login service, pam_unix for the password, then the code
code=$(oathtool --totp -b "$SECRET")
out=$(printf 'Pa55-word-vm\n%s\n' "$code" | pamtester login alice authenticate 2>&1)
echo "login| $out"
vm_check "login asks for the one-time code after the password" grep -q -i 'code' <<<"$out"
vm_check "login with password and code succeeds" grep -q 'successfully authenticated' <<<"$out"
out=$(printf 'Pa55-word-vm\n%s\n' "$code" | pamtester login alice authenticate 2>&1)
vm_check "the same code again is refused" vm_not grep -q 'successfully authenticated' <<<"$out"
out=$(printf 'Pa55-word-vm\n000000\n' | pamtester login alice authenticate 2>&1)
vm_check "a wrong code is refused" vm_not grep -q 'successfully authenticated' <<<"$out"
out=$(printf 'wrong-password\n' | pamtester login alice authenticate 2>&1)
vm_check "a wrong password is refused before any code is asked" vm_not grep -q -i 'code' <<<"$out"

# 4. USB: a stick is blocked, a keyboard works
vm_hmp device_add usb-storage,bus=xhci.0,drive=stick1,id=stick1,serial=MGVMSTICK1
sleep 3
expect_stick_blocked MGVMSTICK1 "installed terminal"
vm_hmp device_add usb-kbd,bus=xhci.0,id=kbd1,serial=MGVMKBD1
expect_hid_bound MGVMKBD1 "installed terminal"
vm_check "the agent reported usb.blocked" vm_wait 10 bash -c "journalctl -u mynaguardd -o cat | grep -q 'usb.blocked'"
printf '#!/bin/sh\ncurl -sS --fail --max-time 5 --cacert %s -H "Authorization: Bearer $(cat /etc/mynaguard-collector/token)" https://127.0.0.1:8444/v1/terminals\n' "$CA" >/root/dash.sh
chmod +x /root/dash.sh
vm_check "the dashboard shows vm-terminal with the blocked stick and the failed logins" \
	wait_secs 60 bash -c "/root/dash.sh | tr -d ' \\n' | grep -q '\"id\":\"vm-terminal\".*\"usb_blocked_24h\":[1-9].*\"auth_failures_24h\":[1-9]'"
/root/dash.sh | head -c 1500 | sed 's/^/dashboard| /'
echo
if ! /root/dash.sh | grep -q vm-terminal; then
	journalctl -u mynaguard-uplink -o cat --no-pager | tail -20 | sed 's/^/uplink-journal| /'
	journalctl -u mynaguard-collector -o cat --no-pager | tail -20 | sed 's/^/collector-journal| /'
	ls -la /var/spool/mynaguard /etc/mynaguard/tls | sed 's/^/ls| /'
	grep -v '^;' /etc/mynaguard/policy.conf | grep -v '^$' | sed 's/^/policy| /'
fi

# 5. a second run changes nothing
s1=$(tree_state)
installer/install.sh --build-dir build -q >/dev/null 2>&1
vm_check "a second run changes nothing" [ "$s1" = "$(tree_state)" ]

# 6. uninstall: PAM, udev, modprobe, systemd exactly as before
rc=0
timeout 300 installer/install.sh --uninstall 2>&1 | sed -u 's/^/uninstall| /'
rc=${PIPESTATUS[0]}
vm_check "--uninstall exits 0" [ "$rc" -eq 0 ]
installer/collector-install.sh --uninstall >/dev/null 2>&1
after=$(config_state)
if [ "$before" = "$after" ]; then
	vm_pass "--uninstall restores /etc/pam.d, udev, modprobe and systemd byte for byte"
else
	diff <(echo "$before") <(echo "$after") | sed 's/^/diff| /'
	vm_fail "--uninstall restores /etc/pam.d, udev, modprobe and systemd byte for byte"
fi
vm_check "mynaguardd is stopped" vm_not systemctl -q is-active mynaguardd.service
vm_check "mynaguard-uplink is stopped" vm_not systemctl -q is-active mynaguard-uplink.service
out=$(printf 'Pa55-word-vm\n' | pamtester login alice authenticate 2>&1)
vm_check "after uninstall the password alone logs in" grep -q 'successfully authenticated' <<<"$out"
vm_end
