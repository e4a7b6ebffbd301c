"""The AWS half of draining a Swarm node before Auto Scaling terminates it (the node half is
node_agents/drain.py): a termination lifecycle hook and the two calls the node may make on it.

A standalone `LifecycleHook`, not the group's `initial_lifecycle_hooks`: those are applied only when a
group is created, so groups of stacks that already run would never get the hook. A termination hook only
has to exist before the first termination, and creating the group terminates nothing.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

# How long a node may stay silent in Terminating:Wait. The agent heartbeats every 30 s
# (node_agents.drain.HEARTBEAT_INTERVAL), so a live agent keeps the node as long as its drain window; a dead
# agent (or a node launched before the agent existed) delays its termination by at most this, then
# DEFAULT_RESULT applies.
HEARTBEAT_TIMEOUT_SECONDS = 120
# For termination hooks both results terminate the instance; CONTINUE lets other termination hooks (an
# operator's own, say) still run, ABANDON would skip them.
DEFAULT_RESULT = "CONTINUE"
TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"
# The ASG tag `wait-for-instance-refreshes.sh` reads to give each refresh batch time to drain.
DRAIN_WINDOW_TAG = "swarm-cluster:drain-window-seconds"


def hook_name(group_name: str) -> str:
    return f"{group_name}-drain"


def termination_hook(name: str, group_name: pulumi.Input[str], opts: pulumi.ResourceOptions) -> None:
    aws.autoscaling.LifecycleHook(
        f"{name}-drain",
        aws.autoscaling.LifecycleHookArgs(
            name=hook_name(name),
            autoscaling_group_name=group_name,
            lifecycle_transition=TERMINATING,
            heartbeat_timeout=HEARTBEAT_TIMEOUT_SECONDS,
            default_result=DEFAULT_RESULT,
        ),
        opts,
    )


def lifecycle_statement(
    group_name: str, partition: pulumi.Input[str], region: str, account_id: pulumi.Input[str]
) -> dict[str, Any]:
    """Complete and heartbeat lifecycle actions of this group only: a node can neither hold nor release
    instances of other groups. The ARN names the group by name (`*` for its id), so a replaced group with
    the same name stays covered."""
    arn = pulumi.Output.format(
        "arn:{0}:autoscaling:{1}:{2}:autoScalingGroup:*:autoScalingGroupName/{3}",
        partition,
        region,
        account_id,
        group_name,
    )
    return {
        "Sid": "DrainOwnNode",
        "Effect": "Allow",
        "Action": ["autoscaling:CompleteLifecycleAction", "autoscaling:RecordLifecycleActionHeartbeat"],
        "Resource": arn,
    }
