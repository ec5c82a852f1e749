#!/usr/bin/env bash
# What the Ansible roles left on the test target (scripts/test-ansible.sh):
# each check prints what it found and fails the run when it is not so.
set -euo pipefail
target=$1
fails=0
x() { podman exec "$target" "$@"; }
check() { # WHAT COMMAND... : the command must succeed
    local what=$1; shift
    if out=$("$@" 2>&1); then
        echo "ok   $what"
    else
        echo "FAIL $what"; echo "$out" | tail -5 | sed 's/^/     /'
        fails=$((fails + 1))
    fi
}
has() { # WHAT TEXT COMMAND... : the command's output must contain TEXT
    local what=$1 text=$2; shift 2
    local out
    out=$("$@" 2>&1 || true)
    if grep -qF -- "$text" <<<"$out"; then
        echo "ok   $what"
    else
        echo "FAIL $what: no '$text' in:"; echo "$out" | head -20 | sed 's/^/     /'
        fails=$((fails + 1))
    fi
}

# Users and SSH: keys only, admins only.
has "admin user alice in the admin group" "filmpicker-admins" x id alice
has "alice's key, and only it" "alice@test" x cat /home/alice/.ssh/authorized_keys
check "one key only" test "$(x grep -c . /home/alice/.ssh/authorized_keys)" = 1
check "sudoers file valid" x visudo -cf /etc/sudoers.d/filmpicker-admins
sshd=$(x /usr/sbin/sshd -T -C user=alice,host=x,addr=198.51.100.7)
has "sshd: no passwords" "passwordauthentication no" echo "$sshd"
has "sshd: no keyboard-interactive" "kbdinteractiveauthentication no" echo "$sshd"
has "sshd: no root" "permitrootlogin no" echo "$sshd"
has "sshd: admins only" "allowgroups filmpicker-admins" echo "$sshd"
has "sshd: public keys only" "authenticationmethods publickey" echo "$sshd"

# UFW: loaded in the target's own network namespace.
ufw=$(x ufw status verbose)
has "ufw active" "Status: active" echo "$ufw"
has "ufw denies incoming by default" "Default: deny (incoming), allow (outgoing)" echo "$ufw"
has "ssh from the first admin network" "22/tcp                     ALLOW IN    198.51.100.7" echo "$ufw"
has "ssh from the second admin network" "22/tcp                     ALLOW IN    192.0.2.0/28" echo "$ufw"
has "https from anywhere" "443/tcp                    ALLOW IN    Anywhere" echo "$ufw"
has "http from anywhere" "80/tcp                     ALLOW IN    Anywhere" echo "$ufw"
check "ssh not open to anywhere" bash -c "! grep -E '^22/tcp +ALLOW IN +Anywhere' <<<\"\$1\"" _ "$ufw"
has "iptables holds ufw's chains" "ufw-user-input" x iptables -S

# Unattended upgrades.
apt=$(x apt-config dump)
has "unattended upgrades daily" 'APT::Periodic::Unattended-Upgrade "1";' echo "$apt"
has "security origin" "Debian-Security" echo "$apt"
has "automatic reboot at 04:30" 'Unattended-Upgrade::Automatic-Reboot-Time "04:30";' echo "$apt"

# fail2ban: the configuration loads, the jails are there, the filter matches
# a real nginx line of ours.
check "fail2ban configuration valid" x fail2ban-client -t
has "sshd jail" "[sshd]" x cat /etc/fail2ban/jail.d/filmpicker.local
line='{"@timestamp":"2026-12-02T13:50:41+00:00","log.level":"info","message":"GET / 429","event.dataset":"nginx.access","event.kind":"event","event.category":["web"],"event.duration":0,"http.request.method":"GET","http.response.status_code":429,"http.response.body.bytes":0,"http.version":"HTTP/2.0","url.path":"/","client.address":"203.0.113.50","trace.id":"0123456789abcdef","service.name":"nginx","nginx.upstream.address":""}'
has "the nginx 429 filter finds the client" "Lines: 1 lines, 0 ignored, 1 matched" \
    x fail2ban-regex "$line" /etc/fail2ban/filter.d/filmpicker-nginx-limit.conf

# Podman and the stack as systemd units.
check "podman installed" x podman --version
check "podman-compose installed" x podman-compose version
has "stack settings: production" "FP_STACK_PROFILE=production" x cat /etc/filmpicker/stack.env
check "stack unit enabled at boot" x test -L /etc/systemd/system/multi-user.target.wants/filmpicker-stack.service
check "stack unit valid" x systemd-analyze verify /etc/systemd/system/filmpicker-stack.service
check "backup timer enabled" x test -L /etc/systemd/system/timers.target.wants/filmpicker-backup.timer
check "backup units valid" x systemd-analyze verify /etc/systemd/system/filmpicker-backup.timer /etc/systemd/system/filmpicker-backup.service
check "the stack script is there" x bash -n /opt/filmpicker/scripts/stack.sh

# Secrets: present, with the owners and modes the containers need.
modes=$(x stat -c '%n %a %u' /etc/filmpicker/secrets /etc/filmpicker/secrets/secret_key \
    /etc/filmpicker/secrets/pgpass /etc/filmpicker/secrets/database_url /etc/filmpicker/secrets/tls_key)
has "secrets dir root only" "/etc/filmpicker/secrets 700 0" echo "$modes"
has "server key private to uid 10001" "/etc/filmpicker/secrets/secret_key 600 10001" echo "$modes"
has "pgpass private to uid 100" "/etc/filmpicker/secrets/pgpass 600 100" echo "$modes"
has "database url readable in the containers" "/etc/filmpicker/secrets/database_url 444 0" echo "$modes"
has "tls key private" "/etc/filmpicker/secrets/tls_key 600 0" echo "$modes"
has "alertmanager config has the bot token and chat" 'chat_id: -1001000000001' x cat /etc/filmpicker/secrets/alertmanager.yml
has "alertmanager config keeps its own templates" '{{ .CommonLabels.alertname }}' x cat /etc/filmpicker/secrets/alertmanager.yml
check "the bootstrap certificate parses" x openssl x509 -noout -in /etc/filmpicker/nginx/tls.crt
has "admin allow-list for nginx" "allow 198.51.100.7/32;" x cat /etc/filmpicker/nginx/admin-allow.conf

if [ "$fails" -ne 0 ]; then
    echo "check_target: $fails check(s) failed" >&2
    exit 1
fi
echo "check_target: all checks passed"
