"""What a change does to running nodes: which groups roll, how, for how long, and what is dangerous."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from components.node_drain import DRAIN_WINDOW_TAG
from offline.diff import GROUP, TEMPLATE, ResourceDiff, new_version, top_key
from offline.refresh_time import RefreshShape

HOOK = "aws:autoscaling/lifecycleHook:LifecycleHook"
BUCKET = "aws:s3/bucket:Bucket"
TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"
HEARTBEAT_DEFAULT = 3600  # what AWS uses when a hook sets no heartbeat timeout
# Group inputs whose change starts an instance refresh by itself.
GROUP_REFRESH_INPUTS = frozenset({"launchTemplate", "mixedInstancesPolicy", "launchConfiguration"})
QUORUM = {"consul-server": "Consul server", "swarm-manager": "Swarm manager"}
# AWS refuses a second resource of these types with the same name (per VPC, account or group), and Pulumi
# creates a replacement before deleting the old one unless told otherwise.
NAME_INPUTS = ("name", "bucket")
UNIQUE_NAMES = frozenset(
    {
        "aws:ec2/securityGroup:SecurityGroup",
        "aws:ec2/launchTemplate:LaunchTemplate",
        GROUP,
        "aws:autoscaling/policy:Policy",
        "aws:autoscaling/lifecycleHook:LifecycleHook",
        "aws:iam/role:Role",
        "aws:iam/instanceProfile:InstanceProfile",
        "aws:iam/rolePolicy:RolePolicy",
        "aws:lb/loadBalancer:LoadBalancer",
        "aws:lb/targetGroup:TargetGroup",
        BUCKET,
    }
)

Record = Mapping[str, Any]


@dataclass(frozen=True)
class GroupRoll:
    group: str
    component: str
    reasons: tuple[str, ...]
    shape: RefreshShape  # at the configured desired capacity
    largest: RefreshShape  # at the group's maximum, for an autoscaled group that has grown

    def as_data(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "component": self.component,
            "reasons": list(self.reasons),
            "instances": self.shape.instances,
            "maxInstances": self.largest.instances,
            "minHealthyPercentage": self.shape.min_healthy,
            "maxHealthyPercentage": self.shape.max_healthy,
            "instanceWarmupSeconds": self.shape.warmup_seconds,
            "drainSeconds": self.shape.drain_seconds,
            "how": self.shape.how(),
            "estimatedSeconds": [self.shape.seconds, self.largest.seconds],
        }


@dataclass
class Rollout:
    rolling: list[GroupRoll] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def rollout(head: Sequence[Record], diffs: list[ResourceDiff]) -> Rollout:
    by_urn = {r["urn"]: r for r in head}
    changed = {d.urn: d for d in diffs}
    result = Rollout()
    for record in head:
        if record["type"] != GROUP or record["urn"] not in changed or changed[record["urn"]].action != "update":
            continue
        reasons = _group_reasons(record, changed[record["urn"]], head, changed)
        if reasons:
            result.rolling.append(_roll(record, reasons, head))
    result.warnings = [w for roll in result.rolling for w in _roll_warnings(roll)]
    result.warnings += [w for d in diffs for w in _resource_warnings(d, by_urn)]
    return result


def _group_reasons(
    group: Record, diff: ResourceDiff, head: Sequence[Record], changed: Mapping[str, ResourceDiff]
) -> tuple[str, ...]:
    template_id = group["inputs"].get("launchTemplate", {}).get("id")
    reasons = []
    for template in (r for r in head if r["type"] == TEMPLATE and template_id in r["references"]):
        template_diff = changed.get(template["urn"])
        if template_diff is None:
            continue
        if template_diff.action == "replace":
            reasons.append(f"launch template {template['name']} replaced")
        if versioned := new_version(template_diff):
            reasons.append(f"new launch template version ({', '.join(versioned)})")
    own = sorted({top_key(c.path) for c in diff.changes} & GROUP_REFRESH_INPUTS)
    if own and not reasons:
        reasons.append(f"group's {', '.join(own)} changed")
    return tuple(reasons)


def _roll(group: Record, reasons: tuple[str, ...], head: Sequence[Record]) -> GroupRoll:
    inputs = group["inputs"]
    preferences = inputs.get("instanceRefresh", {}).get("preferences", {})
    warmup = preferences.get("instanceWarmup") or inputs.get("defaultInstanceWarmup") or 0

    def shape(instances: Any) -> RefreshShape:
        return RefreshShape(
            instances=int(instances),
            min_healthy=int(preferences.get("minHealthyPercentage", 90)),
            max_healthy=int(preferences.get("maxHealthyPercentage", 100)),
            warmup_seconds=int(warmup),
            drain_seconds=_drain_seconds(group, head),
        )

    desired = inputs.get("desiredCapacity", inputs["minSize"])
    largest = inputs["maxSize"] if "desiredCapacity" in group["ignoreChanges"] else desired
    return GroupRoll(
        inputs["name"], _tags(inputs).get("cluster.component", ""), reasons, shape(desired), shape(largest)
    )


def _drain_seconds(group: Record, head: Sequence[Record]) -> int:
    """The group's drain window; else the longest a termination hook holds a silent instance."""
    if (window := _tags(group["inputs"]).get(DRAIN_WINDOW_TAG)) is not None:
        return int(window)
    name = group["inputs"]["name"]
    hooks = [r["inputs"] for r in head if r["type"] == HOOK and r["inputs"].get("autoscalingGroupName") == name]
    hooks += group["inputs"].get("initialLifecycleHooks", [])
    timeouts = [
        int(h.get("heartbeatTimeout", HEARTBEAT_DEFAULT)) for h in hooks if h["lifecycleTransition"] == TERMINATING
    ]
    return max(timeouts, default=0)


def _roll_warnings(roll: GroupRoll) -> list[str]:
    role = QUORUM.get(roll.component)
    if roll.shape.outage:
        what = f"its {role}" if role else "the containers of this group"
        lost = (
            " and Consul's KV data (overlay networks, Swarm leader lock) written after its last S3 snapshot"
            if roll.component == "consul-server"
            else ""
        )
        title = f"LONE {role.upper()} REPLACED" if role else "GROUP OUTAGE"
        return [
            f"{title}: {roll.group} has {roll.shape.instances} instance(s), all stopped before their replacements "
            f"start: the cluster loses {what} until the new ones have booted{lost}"
        ]
    if role:
        return [
            f"QUORUM GROUP ROLLS: {roll.group} ({roll.shape.instances} {role}s) is replaced {roll.shape.how()}; "
            "every member must be healthy before this deploys, or the quorum is lost while one is away"
        ]
    return []


def _resource_warnings(diff: ResourceDiff, by_urn: Mapping[str, Record]) -> list[str]:
    found = []
    label = f"{diff.name} ({diff.type.split(':')[-1]})"
    if diff.type == GROUP and diff.action in ("replace", "delete"):
        found.append(
            f"GROUP {'REPLACED' if diff.action == 'replace' else 'DELETED'}: {label}: every instance is "
            "terminated at once, with no rolling replacement"
        )
    if diff.type == BUCKET and diff.action in ("replace", "delete"):
        found.append(f"REGISTRY BUCKET {diff.action.upper()}D: {label}: the images it holds go with it")
    record = by_urn.get(diff.urn)
    renamed = any(top_key(c.path) in NAME_INPUTS for c in diff.changes)
    created_first = record is not None and not record["deleteBeforeReplace"]
    if diff.action == "replace" and diff.type in UNIQUE_NAMES and created_first and not renamed:
        found.append(
            f"REPLACEMENT WILL FAIL: {label} keeps its name, and AWS refuses a second one while the old "
            "exists (Pulumi creates the replacement first): rename it, or replace it with deleteBeforeReplace"
        )
    if diff.protected and diff.action in ("replace", "delete"):
        found.append(
            f"PROTECTED RESOURCE {diff.action.upper()}D: {label}: `pulumi up` refuses until its protection is "
            "lifted deliberately"
        )
    elif diff.protected and diff.action == "update":
        found.append(f"PROTECTED RESOURCE UPDATED: {label}: review the changed inputs")
    return found


def _tags(inputs: Mapping[str, Any]) -> dict[str, str]:
    return {t["key"]: t["value"] for t in inputs.get("tags", [])}
