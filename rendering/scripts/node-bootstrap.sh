#!/bin/sh
# node-bootstrap: runs in system-docker on every boot, after `network` and before `console`
# (so before user Docker). Containment first: it needs no network and must never be skipped.
# Everything it says also goes to the console, which EC2 keeps (GetConsoleOutput).
set -eu
me=node-bootstrap

prefix=@PREFIX@
imds=http://@IMDS@/latest/meta-data
identity=@IDENTITY@
# "<service>/<VARIABLE> <port>" lines: VARIABLE=<validated private IP>:<port> for that service only.
advertise='@ADVERTISE@'

@SAY@

# ensure CHAIN RULE...: put RULE at the top of CHAIN unless it is already there (reruns add nothing).
ensure() {
  chain=$1
  shift
  if ! iptables -w -C "$chain" "$@" 2>/dev/null; then
    iptables -w -I "$chain" 1 "$@"
  fi
}

# Containers on bridge and overlay networks: no metadata service, no cluster control ports
# (2375/2376 engines, 4000 Swarm manager, 8500 Consul) on other hosts (FORWARD out of eth0, through
# DOCKER-USER), nor on this host (INPUT from the container bridges). Containers may still use those
# ports among themselves. Host-network system services are unaffected.
contain_containers() {
  if ! iptables -w -n -L DOCKER-USER >/dev/null 2>&1; then
    iptables -w -N DOCKER-USER
  fi
  ensure DOCKER-USER -d @IMDS@/32 -j DROP
  for port in 2375 2376 4000 8500; do
    ensure DOCKER-USER -o eth0 -p tcp --dport "$port" -j DROP
  done
  for bridge in docker0 br-+ docker_gwbridge; do
    for port in 2375 2376 4000; do
      ensure INPUT -i "$bridge" -p tcp --dport "$port" -j DROP
    done
  done
}

fetch() {
  if command -v wget >/dev/null 2>&1; then
    wget -q -T 2 -O - "$imds/$1"
  else
    curl -fsS -m 2 "$imds/$1"
  fi
}

# DHCP may still be running when this starts: retry for about two minutes.
metadata() {
  tries=0
  while [ "$tries" -lt 40 ]; do
    if value=$(fetch "$1" 2>/dev/null) && [ -n "$value" ]; then
      printf '%s\n' "$value"
      return 0
    fi
    tries=$((tries + 1))
    sleep 3
  done
  say "FAILED: no answer for meta-data/$1; this node will not join the cluster"
  return 1
}

fail() {
  say "FAILED: unexpected $1 from the metadata service; this node will not join the cluster"
  exit 1
}

contain_containers

instance_id=$(metadata instance-id) || exit 1
local_ipv4=$(metadata local-ipv4) || exit 1
zone=$(metadata placement/availability-zone) || exit 1
region=$(metadata placement/region) || exit 1
instance_type=$(metadata instance-type) || exit 1

case "$instance_id" in
  i-*[!0-9a-f]*) fail instance-id ;;
  i-?*) ;;
  *) fail instance-id ;;
esac
case "$local_ipv4" in
  *[!0-9.]* | *..* | .* | *.) fail local-ipv4 ;;
  *.*.*.*.*) fail local-ipv4 ;;
  *.*.*.*) ;;
  *) fail local-ipv4 ;;
esac
case "$zone" in ''|*[!a-z0-9-]*) fail availability-zone ;; esac
case "$region" in ''|*[!a-z0-9-]*) fail region ;; esac
case "$instance_type" in ''|*[!a-z0-9.-]*) fail instance-type ;; esac

ros config set rancher.environment.AWS_INSTANCE_ID "$instance_id"
ros config set rancher.environment.AWS_LOCAL_IPV4 "$local_ipv4"
ros config set rancher.environment.AWS_AVAILABILITY_ZONE "$zone"
ros config set rancher.environment.AWS_DEFAULT_REGION "$region"
ros config set rancher.environment.AWS_INSTANCE_TYPE "$instance_type"

# The config key keeps the name through later config loads and stops DHCP renaming the host.
name="$prefix-$instance_id"
hostname "$name"
ros config set hostname "$name"
if ! grep -q "[[:space:]]$name\$" /etc/hosts; then
  printf '127.0.1.1 %s\n' "$name" >> /etc/hosts
fi
printf '%s\n' "$advertise" | while read -r key port; do
  [ -z "$key" ] || ros config set "rancher.environment.$key" "$local_ipv4:$port"
done
mkdir -p "${identity%/*}"
printf '%s %s\n' "$name" "$local_ipv4" >"$identity"
say "$name ($local_ipv4, $zone, $instance_type)"
