#!/bin/sh
# node-images: pulls the images of this node's user-Docker services, with retries, before RancherOS starts
# them (they are ordered after it). RancherOS pulls a missing image once and gives up on the first error.
set -u
me=node-images
PATH=$PATH:/var/lib/rancher/engine

# Services and images, one "name image [once]" a line.
services='@SERVICES@'
attempts=@PULL_ATTEMPTS@
first_delay=@PULL_DELAY@

@SAY@

# User Docker starts after the console; wait for its API.
waited=0
until docker version >/dev/null 2>&1; do
  if [ "$waited" -ge @DOCKER_WAIT@ ]; then
    say "user Docker did not answer within ${waited}s"
    exit 1
  fi
  sleep 5
  waited=$((waited + 5))
done

# pull IMAGE: up to $attempts tries, waiting first_delay, then twice as long after each failure.
pull() {
  try=1
  delay=$first_delay
  while ! docker pull "$1" >/dev/null; do
    if [ "$try" -ge "$attempts" ]; then
      say "FAILED to pull $1 after $try attempts"
      return 1
    fi
    say "pull of $1 failed (attempt $try of $attempts); retrying in ${delay}s"
    sleep "$delay"
    try=$((try + 1))
    delay=$((delay * 2))
  done
}

failed=0
while read -r name image _; do
  [ -n "$name" ] || continue
  if docker image inspect "$image" >/dev/null 2>&1; then
    continue
  fi
  if pull "$image"; then
    say "$name: pulled $image"
  else
    failed=1
  fi
done <<EOF
$services
EOF
exit "$failed"
