#!/bin/bash
# SPDX-License-Identifier: MIT
# Guest side of tests/deb/vm-deb.py, in a systemd-booted Debian 12: the packages from the signed
# repository in /srv/mynaguard-repo with apt, the collector with enrollment from its setup.conf,
# the terminal enrolled with a one-time token (no file carried), the no-lock-out rule, a blocked
# stick, the upgrade with the agent running (no storage bind at any moment), what the upgrade
# keeps, the certificate renewed and delivery going on with it, purge.
set -u
. /root/vmtest/lib.sh
vm_ctl_open
SECRET=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP
NEW=$(cat /root/new-version)
export PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive
echo "vm-deb: start after $(cut -d' ' -f1 /proc/uptime) s"

# PAM, udev, modprobe and systemd configuration: paths, types, modes, owners, contents.
config_state() {
	for d in /etc/pam.d /etc/udev/rules.d /etc/modprobe.d /etc/systemd/system /usr/share/pam-configs; do
		[ -d "$d" ] || continue
		find "$d" -path /etc/systemd/system/mynaguard-vmtest.service -prune -o -printf '%p %y %m %U %G %l\n' | sort
		find "$d" -type f ! -name mynaguard-vmtest.service -print0 | sort -z | xargs -0 -r sha256sum
	done
}
wait_secs() {
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		[ "$SECONDS" -lt "$end" ] || return 1
		sleep 1
	done
}
run_logged() { # run_logged TAG COMMAND...: output prefixed on the console; the command's status
	local tag=$1 rc
	shift
	"$@" >/root/"$tag".log 2>&1
	rc=$?
	sed "s/^/$tag| /" /root/"$tag".log
	return $rc
}
collector_events() { # the number of events in a fresh online backup of the collector's store
	mynaguard-collector --config /etc/mynaguard-collector/collector.conf --backup /root/c.db 2>/dev/null |
		sed -n 's/.* \([0-9][0-9]*\) events, quick_check ok$/\1/p'
}
export -f collector_events
login_with_code() {
	local out
	out=$(printf 'Pa55-word-vm\n%s\n' "$(oathtool --totp -b "$SECRET")" | pamtester login alice authenticate 2>&1)
	echo "login| $out"
	grep -q 'successfully authenticated' <<<"$out" && grep -q -i 'code' <<<"$out"
}

useradd -m -G sudo -s /bin/bash alice
echo 'alice:Pa55-word-vm' | chpasswd
before=$(config_state)
cp /etc/pam.d/common-auth /root/common-auth.before

# 0. apt from the signed repository only (no network in the guest)
mv /etc/apt/sources.list /root/sources.list.debian
install -d -m 0755 /etc/apt/keyrings
install -m 0644 /srv/mynaguard-repo/mynaguard-archive-keyring.gpg /etc/apt/keyrings/
echo "deb [signed-by=/etc/apt/keyrings/mynaguard-archive-keyring.gpg] file:/srv/mynaguard-repo mynaguard main" \
	>/etc/apt/sources.list.d/mynaguard.list
vm_check "apt-get update reads the signed repository" run_logged apt-update apt-get update
vm_check "no warning about the signature" vm_not grep -q '^[WE]:' /root/apt-update.log
vm_check "apt offers mynaguard-terminal $NEW" bash -c "apt-cache policy mynaguard-terminal | grep -q 'Candidate: $NEW'"

# 1. the collector package on this host too, with enrollment from its setup.conf
# (docs/install.md): CA, server certificate, dashboard token, signer, running services
mkdir -p /etc/mynaguard-collector
printf 'server_names = localhost 127.0.0.1\nenroll_listen = 127.0.0.1:8445\n' >/etc/mynaguard-collector/setup.conf
vm_check "apt install mynaguard-collector=0.1.0" run_logged install-collector apt-get install -y mynaguard-collector=0.1.0
vm_check "mynaguard-collector.service is active" vm_wait 60 systemctl -q is-active mynaguard-collector.service
vm_check "the postinst made the city CA and the dashboard token" test -f /var/lib/mynaguard-ca/ca.key -a -s /etc/mynaguard-collector/token
vm_check "the postinst switched on [enroll] from setup.conf" \
	bash -c "grep -q '^\[enroll\]$' /etc/mynaguard-collector/collector.conf && grep -q '^listen = 127.0.0.1:8445$' /etc/mynaguard-collector/collector.conf"
vm_check "mynaguard-signer.service is enabled and active" \
	bash -c "systemctl -q is-enabled mynaguard-signer.service && systemctl -q is-active mynaguard-signer.service"
vm_check "the CA key belongs to mynaguard-ca, not to the collector" \
	bash -c '[ "$(stat -c %U /var/lib/mynaguard-ca/ca.key)" = mynaguard-ca ]'
vm_check "the collector listens for enrollment" vm_wait 30 bash -c "journalctl -u mynaguard-collector.service | grep -q 'enroll=127.0.0.1:8445'"
vm_check "mynaguard-collector-token makes a token" \
	bash -c "mynaguard-collector-token create --terminal vm-terminal --expires 1h >/root/enroll-token && grep -q '^mge1-' /root/enroll-token"
FP=$(mynaguard-ca --dir /var/lib/mynaguard-ca fingerprint)

# 2. the terminal package, nobody enrolled: installed, the code step NOT on
mkdir -p /etc/mynaguard
printf 'terminal_id = vm-terminal\ncollector = https://127.0.0.1:8443\nadmins = alice\n' >/etc/mynaguard/setup.conf
vm_check "apt install mynaguard-terminal=0.1.0 exits 0" run_logged install-terminal apt-get install -y mynaguard-terminal=0.1.0
vm_check "the postinst says the code step is not on yet" grep -q "NOT switching on the code step" /root/install-terminal.log
vm_check "without an enrolled admin common-auth is unchanged" cmp -s /etc/pam.d/common-auth /root/common-auth.before
vm_check "mynaguardd.service is active" vm_wait 60 systemctl -q is-active mynaguardd.service
vm_check "mynaguardd.service is enabled" systemctl -q is-enabled mynaguardd.service
vm_check "the policy has the id and collector from setup.conf" \
	bash -c "grep -q '^id = vm-terminal$' /etc/mynaguard/policy.conf && grep -q '^collector = https://127.0.0.1:8443$' /etc/mynaguard/policy.conf"
vm_check "the uplink is not started without a certificate" vm_not systemctl -q is-active mynaguard-uplink.service
vm_check "root hubs have interface_authorized_default=0" roothubs_deny
vm_check "the manifest verifies" bash -c "sha256sum --quiet -c /var/lib/mynaguard/installed.sha256"
vm_check "spool and TOTP store owned as install.sh makes them" \
	bash -c '[ "$(stat -c "%U:%G %a" /var/spool/mynaguard)" = "root:mynaguard 750" ] && [ "$(stat -c "%a" /var/lib/mynaguard/totp)" = 700 ]'

# 3. the certificate by enrollment with the one-time token (docs/enrollment.md, 3), then the
# uplink; alice enrolls and the code step goes on
vm_check "mynaguard-uplink --enroll with the token" run_logged enroll \
	bash -c "mynaguard-uplink --enroll https://127.0.0.1:8445 --token-file - --ca-fingerprint '$FP' </root/enroll-token"
vm_check "enrollment wrote key (0600, mynaguard), certificate and CA" \
	bash -c '[ "$(stat -c "%a %U" /etc/mynaguard/tls/terminal.key)" = "600 mynaguard" ] && [ -s /etc/mynaguard/tls/terminal.pem ] && cmp -s /etc/mynaguard/tls/ca.pem /var/lib/mynaguard-ca/ca.pem'
vm_check "the certificate names vm-terminal and is signed by the city CA" \
	bash -c "openssl x509 -in /etc/mynaguard/tls/terminal.pem -noout -subject | grep -q 'CN *= *vm-terminal' && openssl verify -CAfile /var/lib/mynaguard-ca/ca.pem /etc/mynaguard/tls/terminal.pem"
enrolled_sum=$(cat /etc/mynaguard/tls/* | sha256sum)
vm_check "the same token a second time is refused" \
	vm_not run_logged enroll-again bash -c "mynaguard-uplink --enroll https://127.0.0.1:8445 --token-file - --ca-fingerprint '$FP' </root/enroll-token"
vm_check "the refusal is the collector's 403, logged there" \
	bash -c "grep -q 403 /root/enroll-again.log && journalctl -u mynaguard-collector.service | grep -q 'enroll.refused.*terminal=vm-terminal'"
vm_check "the refused attempt changed nothing on the terminal" [ "$enrolled_sum" = "$(cat /etc/mynaguard/tls/* | sha256sum)" ]
rm -f /root/enroll-token
printf '%s\n' "$SECRET" | mynaguardctl totp enroll alice --secret-file - --no-qr >/dev/null 2>&1
# the enrollment counts once a code is verified (mynaguardctl totp verify); the code of the step
# before, so the login below can use the current one (one-time rule)
oathtool --totp -b "$SECRET" --now "@$(($(date +%s) - 30))" | mynaguardctl totp verify alice >/dev/null 2>&1
vm_check "dpkg-reconfigure mynaguard-terminal exits 0" run_logged reconfigure dpkg-reconfigure mynaguard-terminal
vm_check "the uplink runs once the certificate is there" vm_wait 60 systemctl -q is-active mynaguard-uplink.service
unix_line=$(grep -n 'pam_unix.so' /etc/pam.d/common-auth | head -1 | cut -d: -f1)
mg_line=$(grep -n 'pam_mynaguard.so' /etc/pam.d/common-auth | head -1 | cut -d: -f1)
vm_check "with alice enrolled the code step is on, after pam_unix" test "${mg_line:-0}" -gt "${unix_line:-999}"
vm_check "login with password and code" login_with_code

# 4. a stick is blocked, and the collector hears of it
vm_hmp device_add usb-storage,bus=xhci.0,drive=stick1,id=stick1,serial=MGVMSTICK1
sleep 3
expect_stick_blocked MGVMSTICK1 "installed package"
vm_check "the blocked stick reaches the collector" wait_secs 90 bash -c '[ "$(collector_events)" -gt 0 ]'
events_before=$(collector_events)
echo "vm-deb: collector holds ${events_before:-?} events before the upgrade"

# 5. the upgrade with the agent running; a second stick plugged in the middle of it
policy_sum=$(sha256sum </etc/mynaguard/policy.conf)
tls_sum=$(cat /etc/mynaguard/tls/* | sha256sum)
totp_sum=$(find /var/lib/mynaguard/totp -type f -exec sha256sum {} + | sort | sha256sum)
spool_before=/root/spool.before
cat /var/spool/mynaguard/seg-* >"$spool_before"
pid_before=$(systemctl show -P MainPID mynaguardd.service)
: >/root/watch.log
(
	# every 50 ms: a storage driver bound, a disk, the rule file gone, a root hub opened
	while [ ! -e /root/watch.stop ]; do
		if ls /sys/bus/usb/drivers/usb-storage/ 2>/dev/null | grep -q ':'; then echo "usb-storage bound" >>/root/watch.log; fi
		if ls /sys/block/ | grep -q '^sd'; then echo "disk $(ls /sys/block | grep '^sd')" >>/root/watch.log; fi
		[ -e /lib/udev/rules.d/70-mynaguard.rules ] || echo "udev rule missing" >>/root/watch.log
		roothubs_deny >/dev/null 2>&1 || echo "root hub default opened" >>/root/watch.log
		sleep 0.05
	done
) &
watcher=$!
apt-get install -y mynaguard-terminal mynaguard-collector >/root/upgrade.log 2>&1 &
apt_pid=$!
# plug while dpkg is at work on mynaguard-terminal (unpacking, or its postinst restarting)
wait_secs 120 bash -c "grep -q 'mynaguard-terminal' /root/upgrade.log && grep -q -E '^(Unpacking|Preparing to unpack)' /root/upgrade.log"
vm_hmp device_add usb-storage,bus=xhci.0,drive=stick2,id=stick2,serial=MGVMSTICK2
vm_check "the second stick was plugged while apt was still upgrading" kill -0 "$apt_pid"
wait "$apt_pid"
rc=$?
sleep 4
touch /root/watch.stop
wait "$watcher"
sed 's/^/upgrade| /' /root/upgrade.log
vm_check "the upgrade exits 0" [ "$rc" -eq 0 ]
vm_check "mynaguard-terminal is now $NEW" [ "$(dpkg-query -W -f '${Version}' mynaguard-terminal)" = "$NEW" ]
vm_check "mynaguard-collector is now $NEW" [ "$(dpkg-query -W -f '${Version}' mynaguard-collector)" = "$NEW" ]
sed 's/^/watch| /' /root/watch.log | head -20
vm_check "during the upgrade: no storage bind, no disk, the rule and the kernel default in place" [ ! -s /root/watch.log ]
vm_check "the agent was restarted with the new files" \
	bash -c "[ \"\$(systemctl show -P MainPID mynaguardd.service)\" != '$pid_before' ] && systemctl -q is-active mynaguardd.service"
expect_stick_blocked MGVMSTICK2 "plugged during the upgrade"
expect_stick_blocked MGVMSTICK1 "after the upgrade"
vm_check "the kernel never detected a mass storage device" vm_not bash -c "dmesg | grep -q 'USB Mass Storage device detected'"
vm_check "the policy is kept" [ "$policy_sum" = "$(sha256sum </etc/mynaguard/policy.conf)" ]
vm_check "the TLS material is kept" [ "$tls_sum" = "$(cat /etc/mynaguard/tls/* | sha256sum)" ]
vm_check "the TOTP store is kept" [ "$totp_sum" = "$(find /var/lib/mynaguard/totp -type f -exec sha256sum {} + | sort | sha256sum)" ]
vm_check "the spool is kept (what was there is still the start of it)" \
	bash -c "cat /var/spool/mynaguard/seg-* | cmp -s -n \$(stat -c %s $spool_before) - $spool_before"
vm_check "the uplink runs after the upgrade" vm_wait 60 systemctl -q is-active mynaguard-uplink.service
vm_check "the collector runs after the upgrade" vm_wait 60 systemctl -q is-active mynaguard-collector.service
vm_check "the collector kept its events and gets the new ones" \
	wait_secs 90 bash -c "[ \"\$(collector_events)\" -gt '${events_before:-0}' ]"
vm_check "login with password and code after the upgrade" login_with_code
vm_check "the signer runs after the upgrade" vm_wait 60 systemctl -q is-active mynaguard-signer.service

# 5b. renewal now (mynaguard-uplink --renew-now, as the uplink's user, as the service would),
# then the old certificate revoked by its serial: delivery goes on with the new one alone
old_serial=$(openssl x509 -in /etc/mynaguard/tls/terminal.pem -noout -serial | sed 's/^serial=0*//')
old_key=$(sha256sum </etc/mynaguard/tls/terminal.key)
vm_check "the uplink stops for the renewal" systemctl stop mynaguard-uplink.service
vm_check "mynaguard-uplink --once --renew-now renews the certificate" run_logged renew \
	runuser -u mynaguard -- mynaguard-uplink --policy /etc/mynaguard/policy.conf --spool /var/spool/mynaguard --once --renew-now
vm_check "the uplink logged the renewal" grep -q 'uplink.renewed' /root/renew.log
new_serial=$(openssl x509 -in /etc/mynaguard/tls/terminal.pem -noout -serial | sed 's/^serial=0*//')
echo "vm-deb: certificate serial $old_serial -> $new_serial"
vm_check "a new certificate (serial) and a new key" \
	bash -c "[ -n '$new_serial' ] && [ '$new_serial' != '$old_serial' ] && [ \"\$(sha256sum </etc/mynaguard/tls/terminal.key)\" != '$old_key' ]"
vm_check "the new key is still 0600 mynaguard" bash -c '[ "$(stat -c "%a %U" /etc/mynaguard/tls/terminal.key)" = "600 mynaguard" ]'
vm_check "the new certificate verifies against the city CA" openssl verify -CAfile /var/lib/mynaguard-ca/ca.pem /etc/mynaguard/tls/terminal.pem
vm_check "the signer recorded the renewal" grep -q "$new_serial" /var/lib/mynaguard-ca/issued.tsv
# the collector re-reads its revoked list when the file changes (docs/enrollment.md, 7)
echo "$old_serial" >>/etc/mynaguard-collector/tls/revoked.txt
vm_check "the uplink starts again" systemctl start mynaguard-uplink.service
events_renewed=$(collector_events)
vm_hmp device_add usb-storage,bus=xhci.0,drive=stick3,id=stick3,serial=MGVMSTICK3
sleep 3
expect_stick_blocked MGVMSTICK3 "after the renewal"
vm_check "after the renewal (old certificate revoked) new events reach the collector" \
	wait_secs 90 bash -c "[ \"\$(collector_events)\" -gt '${events_renewed:-0}' ]"
vm_check "the collector saw the new certificate" \
	bash -c "curl -sf --cacert /var/lib/mynaguard-ca/ca.pem -H \"Authorization: Bearer \$(cat /etc/mynaguard-collector/token)\" https://127.0.0.1:8444/v1/terminals/vm-terminal | grep -q -i '$new_serial'"

# 6. purge: PAM, udev, modprobe and systemd exactly as before
vm_check "apt purge exits 0" run_logged purge apt-get purge -y mynaguard-terminal mynaguard-collector
after=$(config_state)
if [ "$before" = "$after" ]; then
	vm_pass "purge restores /etc/pam.d, udev, modprobe and systemd byte for byte"
else
	diff <(echo "$before") <(echo "$after") | sed 's/^/diff| /'
	vm_fail "purge restores /etc/pam.d, udev, modprobe and systemd byte for byte"
fi
vm_check "common-auth is byte for byte the one before" cmp -s /etc/pam.d/common-auth /root/common-auth.before
vm_check "purge removed /etc/mynaguard, the spool and the state" \
	bash -c "[ ! -e /etc/mynaguard ] && [ ! -e /var/spool/mynaguard ] && [ ! -e /var/lib/mynaguard ]"
vm_check "purge removed the service users" vm_not bash -c "getent passwd mynaguard || getent passwd mynaguard-agent || getent passwd mynaguard-collector"
vm_check "mynaguardd is stopped" vm_not systemctl -q is-active mynaguardd.service
vm_check "mynaguard-uplink is stopped" vm_not systemctl -q is-active mynaguard-uplink.service
vm_check "mynaguard-signer is stopped" vm_not systemctl -q is-active mynaguard-signer.service
out=$(printf 'Pa55-word-vm\n' | pamtester login alice authenticate 2>&1)
vm_check "after purge the password alone logs in" grep -q 'successfully authenticated' <<<"$out"
vm_end
