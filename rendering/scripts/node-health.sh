#!/bin/sh
# node-health: once per boot, waits until this node is healthy: node-bootstrap validated its identity,
# every user-Docker service it needs runs without restarting, and every one-shot step (`once`) exited 0.
# A node that is not healthy by the deadline says why on the console (EC2 GetConsoleOutput) and powers
# off; the launch template's shutdown behaviour is `terminate`, so the autoscaling group replaces it. The
# deadline is long compared with a normal boot and with the group's health check grace period, so a broken
# image or registry costs one replacement per deadline per instance, never a tight loop. Failures of shared
# services (Consul quorum, S3) do not count: replacing nodes would not fix them.
set -u
me=node-health
PATH=$PATH:/var/lib/rancher/engine

services='@SERVICES@'
deadline=@DEADLINE@
interval=@INTERVAL@
identity=@IDENTITY@

@SAY@

# Prints what is wrong (nothing when healthy); `state` accumulates "name running restarts" lines.
problems() {
  [ -s "$identity" ] || echo "node-bootstrap did not validate this node's identity"
  state=
  while read -r name image kind; do
    [ -n "$name" ] || continue
    if [ "$kind" = once ]; then
      # A one-shot step (restart on failure) is done when it exited 0; "created" has exit code 0 too.
      status=$(docker inspect -f '{{.State.Status}} {{.State.ExitCode}} {{.RestartCount}}' "$name" 2>/dev/null) || status=
      case "$status" in
        "exited 0 "*) ;;
        "") echo "$name ($image) does not exist" ;;
        *) echo "$name ($image) has not succeeded: $status (see docker logs $name)" ;;
      esac
    else
      status=$(docker inspect -f '{{.State.Running}} {{.RestartCount}}' "$name" 2>/dev/null) || status=
      case "$status" in
        "true "*) ;;
        "") echo "$name ($image) does not exist" ;;
        *) echo "$name ($image) is not running" ;;
      esac
    fi
    state="$state$name $status;"
  done <<EOF
$services
EOF
  printf '%s\n' "$state" >"$scratch/state"
}

scratch=$(mktemp -d)
start=$(date +%s)
previous=
while :; do
  wrong=$(problems)
  current=$(cat "$scratch/state")
  # Healthy twice in a row with no restart in between: a crash-looping service is not healthy.
  if [ -z "$wrong" ] && [ "$current" = "$previous" ]; then
    say "healthy after $(($(date +%s) - start))s"
    exit 0
  fi
  previous=$current
  if [ $(($(date +%s) - start)) -ge "$deadline" ]; then
    [ -n "$wrong" ] || wrong="a service keeps restarting: $current"
    printf '%s\n' "$wrong" | while read -r line; do say "UNHEALTHY: $line"; done
    say "not healthy ${deadline}s after boot; powering off so the autoscaling group replaces this instance"
    poweroff
    exit 1
  fi
  sleep "$interval"
done
