#!/bin/sh
# No password or keyboard-interactive logins: SSH keys (or SSM) only.
set -eu
config=/etc/ssh/sshd_config
[ -f "$config" ] || exit 0
others=$(grep -v -i -E '^[[:space:]]*(PasswordAuthentication|ChallengeResponseAuthentication)[[:space:]]' "$config" || true)
printf 'PasswordAuthentication no\nChallengeResponseAuthentication no\n%s\n' "$others" > "$config"
