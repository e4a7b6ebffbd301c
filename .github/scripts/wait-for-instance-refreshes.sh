#!/bin/sh
# Waits for the instance refreshes one deploy started, and fails if any of them does not succeed.
# `pulumi up` returns as soon as the groups point at their new launch template versions; the rolling
# replacement of the instances happens after that. Run `record` before `pulumi up` and `wait` after it:
#
#   wait-for-instance-refreshes.sh record ENVIRONMENT FILE   note the refreshes that exist before the deploy
#   wait-for-instance-refreshes.sh wait ENVIRONMENT FILE     wait for the newest refresh of each group since
#
# Older refreshes (a failed one of an earlier deploy included) are ignored. The deadline comes from the
# groups that roll: per group, the offline plan's estimate (offline/refresh_time.py: the group's desired
# capacity, the refresh's healthy percentages and warmup, the group's drain-window tag) times 1.5 plus 10
# minutes, counted from the start of the wait; groups roll in parallel, so the longest one sets it.
# REFRESH_POLL_SECONDS (default 30) is the pause between two looks.
set -eu

usage="usage: wait-for-instance-refreshes.sh record|wait ENVIRONMENT FILE"
action=${1:?$usage}
environment=${2:?$usage}
file=${3:?$usage}
poll=${REFRESH_POLL_SECONDS:-30}
root=$(cd "$(dirname "$0")/../.." && pwd)
tab=$(printf '\t')
drain_tag=swarm-cluster:drain-window-seconds

# One line per group of the environment: name, desired capacity, default warmup, drain window.
groups() {
  aws autoscaling describe-auto-scaling-groups \
    --filters "Name=tag:docker.environment,Values=$environment" \
    --query "AutoScalingGroups[].[AutoScalingGroupName,DesiredCapacity,DefaultInstanceWarmup,Tags[?Key=='$drain_tag'].Value | [0]]" \
    --output text </dev/null
}

# One line per refresh of group $1, newest first: id, status, start, min/max healthy %, warmup, reason.
# (A failed `aws` call must stop the script: its output goes to a file, never into a pipeline.)
refreshes() {
  aws autoscaling describe-instance-refreshes --auto-scaling-group-name "$1" --max-records 100 \
    --query 'InstanceRefreshes[].[InstanceRefreshId,Status,StartTime,Preferences.MinHealthyPercentage,Preferences.MaxHealthyPercentage,Preferences.InstanceWarmup,StatusReason]' \
    --output text </dev/null >"$work/answer"
  sort -t "$tab" -k3,3r "$work/answer"
}

# $1 if AWS answered a value, else the default $2.
given() {
  if [ "$1" = None ] || [ -z "$1" ]; then echo "$2"; else echo "$1"; fi
}

record() {
  : >"$file"
  groups >"$work/groups"
  while IFS="$tab" read -r group _; do
    refreshes "$group" >"$work/list"
    awk -F "$tab" -v group="$group" '$1 != "" { print group " " $1 }' "$work/list" >>"$file"
  done <"$work/groups"
  echo "$environment: $(wc -l <"$file" | tr -d ' ') earlier instance refreshes noted in $file"
}

# The newest refresh of group $1 that `record` did not see, as `refreshes` prints it; nothing if none.
started() {
  refreshes "$1" >"$work/list"
  while IFS="$tab" read -r id rest; do
    if [ -n "$id" ] && ! grep -qxF "$1 $id" "$file"; then
      printf '%s\t%s\n' "$id" "$rest"
      return
    fi
  done <"$work/list"
}

wait_for_refreshes() {
  [ -f "$file" ] || { echo "$file: run \`$0 record $environment $file\` before the deploy" >&2; exit 2; }
  now=$(date +%s)
  deadline=$now
  : >"$work/pending"
  groups >"$work/groups"
  while IFS="$tab" read -r group desired default_warmup drain; do
    started "$group" >"$work/line"
    line=$(cat "$work/line")
    if [ -z "$line" ]; then
      echo "$group: no instance refresh started by this deploy"
      continue
    fi
    IFS="$tab" read -r id status _ low high warmup _ <<EOF
$line
EOF
    warmup=$(given "$warmup" "$(given "$default_warmup" 0)")
    estimate=$(python3 "$root/offline/refresh_time.py" "$desired" "$(given "$low" 90)" "$(given "$high" 100)" \
      "$warmup" "$(given "$drain" 0)")
    allowed=$((estimate * 3 / 2 + 600))
    [ $((now + allowed)) -le "$deadline" ] || deadline=$((now + allowed))
    echo "$group: refresh $id $status; about $((estimate / 60)) min for $desired instance(s), allowed $((allowed / 60)) min"
    echo "$group $id" >>"$work/pending"
  done <"$work/groups"
  while [ -s "$work/pending" ]; do
    : >"$work/next"
    failed=0
    while read -r group id; do
      refreshes "$group" >"$work/list"
      line=$(awk -F "$tab" -v id="$id" '$1 == id' "$work/list")
      IFS="$tab" read -r _ status _ _ _ _ reason <<EOF
$line
EOF
      case "$status" in
        Successful) echo "$group: refresh $id Successful" ;;
        Pending | InProgress | Baking | Cancelling | RollbackInProgress) echo "$group $id" >>"$work/next" ;;
        *)
          echo "$group: refresh $id ended $status: $(given "$reason" "no reason given")" >&2
          failed=1
          ;;
      esac
    done <"$work/pending"
    mv "$work/next" "$work/pending"
    if [ "$failed" -ne 0 ]; then
      [ ! -s "$work/pending" ] || echo "still rolling: $(cut -d' ' -f1 "$work/pending" | tr '\n' ' ')" >&2
      exit 1
    fi
    [ -s "$work/pending" ] || break
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "deadline passed with refreshes still running: $(cut -d' ' -f1 "$work/pending" | tr '\n' ' ')" >&2
      exit 1
    fi
    sleep "$poll"
  done
  echo "$environment: every instance refresh of this deploy succeeded"
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
case "$action" in
  record) record ;;
  wait) wait_for_refreshes ;;
  *)
    echo "$usage" >&2
    exit 2
    ;;
esac
