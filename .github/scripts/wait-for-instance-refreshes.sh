#!/bin/sh
# Waits until no autoscaling group of one environment has an instance refresh under way, and fails if
# the latest refresh of any group did not succeed. `pulumi up` returns as soon as the groups point at
# their new launch template versions; the rolling replacement of the instances happens after that.
#
#   wait-for-instance-refreshes.sh ENVIRONMENT     (REFRESH_TIMEOUT_SECONDS, default 2700)
set -eu

environment=${1:?usage: wait-for-instance-refreshes.sh ENVIRONMENT}
deadline=$(($(date +%s) + ${REFRESH_TIMEOUT_SECONDS:-2700}))

groups=$(aws autoscaling describe-auto-scaling-groups \
  --filters "Name=tag:docker.environment,Values=$environment" \
  --query 'AutoScalingGroups[].AutoScalingGroupName' --output text)
if [ -z "$groups" ]; then
  echo "no autoscaling group is tagged docker.environment=$environment" >&2
  exit 1
fi

# Group names are <environment>-<name>: no white space, so word splitting lists them.
for group in $groups; do
  while :; do
    status=$(aws autoscaling describe-instance-refreshes --auto-scaling-group-name "$group" \
      --max-records 1 --query 'InstanceRefreshes[0].Status' --output text)
    case "$status" in
      None | Successful)
        echo "$group: ${status}"
        break
        ;;
      Pending | InProgress | Baking | Cancelling | RollbackInProgress) ;;
      *)
        echo "$group: the instance refresh ended $status" >&2
        exit 1
        ;;
    esac
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "$group: the instance refresh is still $status at the deadline" >&2
      exit 1
    fi
    sleep 30
  done
done
