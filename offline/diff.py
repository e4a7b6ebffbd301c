"""What `pulumi up` would do to go from one recorded run of the program to another: pure, no Pulumi imports.

Resources are matched by URN, as the engine does. An input change is an update unless the provider forces a
replacement for that input; a replaced resource gets a new id, so whatever refers to it changes too.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Record = Mapping[str, Any]

# Inputs whose change makes the AWS provider replace the resource (ForceNew / RequiresReplace in the
# terraform-provider-aws schemas pulumi-aws 7 is built from), for every type this program declares.
REPLACED_BY: dict[str, frozenset[str]] = {
    "aws:autoscaling/group:Group": frozenset({"name", "namePrefix"}),
    "aws:autoscaling/policy:Policy": frozenset({"name", "autoscalingGroupName"}),
    "aws:autoscaling/lifecycleHook:LifecycleHook": frozenset({"name", "autoscalingGroupName"}),
    "aws:ec2/launchTemplate:LaunchTemplate": frozenset({"name", "namePrefix"}),
    "aws:ec2/securityGroup:SecurityGroup": frozenset({"name", "namePrefix", "description", "vpcId"}),
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": frozenset({"securityGroupId"}),
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": frozenset({"securityGroupId"}),
    "aws:iam/role:Role": frozenset({"name", "namePrefix", "path"}),
    "aws:iam/rolePolicy:RolePolicy": frozenset({"name", "namePrefix", "role"}),
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": frozenset({"role", "policyArn"}),
    "aws:iam/instanceProfile:InstanceProfile": frozenset({"name", "namePrefix", "path"}),
    "aws:lb/loadBalancer:LoadBalancer": frozenset({"name", "namePrefix", "internal", "loadBalancerType"}),
    "aws:lb/targetGroup:TargetGroup": frozenset(
        {"name", "namePrefix", "port", "protocol", "protocolVersion", "targetType", "vpcId", "ipAddressType"}
    ),
    "aws:lb/listener:Listener": frozenset({"loadBalancerArn"}),
    "aws:route53/zone:Zone": frozenset({"name"}),
    "aws:route53/record:Record": frozenset({"name", "zoneId"}),
    "aws:s3/bucket:Bucket": frozenset({"bucket", "bucketPrefix"}),
    "aws:s3/bucketVersioning:BucketVersioning": frozenset({"bucket", "expectedBucketOwner"}),
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": frozenset(
        {"bucket", "expectedBucketOwner"}
    ),
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": frozenset({"bucket"}),
    "aws:s3/bucketPolicy:BucketPolicy": frozenset({"bucket"}),
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": frozenset({"bucket"}),
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": frozenset({"bucket", "expectedBucketOwner"}),
}
# A launch template changes in place for these inputs; any other change creates a new version
# (terraform-provider-aws resourceLaunchTemplateUpdate), which the groups using it then roll to.
TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
GROUP = "aws:autoscaling/group:Group"
TEMPLATE_IN_PLACE = frozenset({"tags", "defaultVersion", "updateDefaultVersion"})
# References this long are distinctive enough to find anywhere, even inside a policy document (ARNs, sg-/lt-
# ids); shorter ids are names, which change (and show as a direct change) whenever such a resource is replaced.
DISTINCTIVE = 20


def top_key(path: str) -> str:
    """`launchTemplate.version` and `tags[3].value` belong to the inputs `launchTemplate` and `tags`."""
    return path.split(".")[0].split("[")[0]


@dataclass(frozen=True)
class Change:
    path: str
    before: Any
    after: Any
    forces_replacement: bool


@dataclass
class ResourceDiff:
    urn: str
    type: str
    name: str
    action: str  # create, delete, replace, update
    changes: list[Change] = field(default_factory=list)
    protected: bool = False
    because_of: list[str] = field(default_factory=list)  # replaced resources this one refers to

    @property
    def replaced_by(self) -> list[str]:
        return [c.path for c in self.changes if c.forces_replacement]


def diff_runs(base: Sequence[Record], head: Sequence[Record]) -> list[ResourceDiff]:
    before = {r["urn"]: r for r in base}
    after = {r["urn"]: r for r in head}
    diffs: dict[str, ResourceDiff] = {}
    for urn, new in after.items():
        if urn not in before:
            diffs[urn] = ResourceDiff(urn, new["type"], new["name"], "create", protected=new["protect"])
        elif new["custom"]:
            changes = list(_changes(new["type"], before[urn]["inputs"], new["inputs"], new["ignoreChanges"]))
            if changes or before[urn]["protect"] != new["protect"]:
                diffs[urn] = _updated(new, changes, before[urn]["protect"])
    for urn, old in before.items():
        if urn not in after:
            diffs[urn] = ResourceDiff(urn, old["type"], old["name"], "delete", protected=old["protect"])
    _cascade_replacements(before, after, diffs)
    _new_template_versions(after, diffs)
    return sorted(diffs.values(), key=lambda d: d.urn)


def new_version(diff: ResourceDiff) -> list[str]:
    """The inputs of a launch template update that create a new version."""
    if diff.type != TEMPLATE or diff.action != "update":
        return []
    return sorted({top_key(c.path) for c in diff.changes} - TEMPLATE_IN_PLACE)


def _new_template_versions(after: dict[str, Record], diffs: dict[str, ResourceDiff]) -> None:
    """A group pinned to its template's latest version follows a new version (the offline cloud stays at 1)."""
    versioned = [after[u]["references"] for u, d in diffs.items() if new_version(d)]
    for record in after.values():
        template = record["inputs"].get("launchTemplate", {}) if record["type"] == GROUP else {}
        follows = any(template.get("id") in references for references in versioned)
        diff = diffs.get(record["urn"]) or ResourceDiff(record["urn"], record["type"], record["name"], "update")
        if follows and diff.action == "update":
            diff.changes.append(Change("launchTemplate.version", template.get("version"), "(new version)", False))
            diffs[record["urn"]] = diff


def _updated(new: Record, changes: list[Change], was_protected: bool) -> ResourceDiff:
    action = "replace" if any(c.forces_replacement for c in changes) else "update"
    return ResourceDiff(new["urn"], new["type"], new["name"], action, changes, new["protect"] or was_protected)


def _changes(type_: str, old: Any, new: Any, ignored: list[str], path: str = "") -> Iterator[Change]:
    if old == new:
        return
    top = top_key(path)
    if path and top in ignored:
        return
    if isinstance(old, dict) and isinstance(new, dict) and "secret" not in old:
        for key in sorted(set(old) | set(new)):
            yield from _changes(type_, old.get(key), new.get(key), ignored, f"{path}.{key}" if path else key)
        return
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            yield from _changes(type_, a, b, ignored, f"{path}[{i}]")
        return
    yield Change(path, old, new, top in REPLACED_BY.get(type_, frozenset()))


def _cascade_replacements(before: dict[str, Record], after: dict[str, Record], diffs: dict[str, ResourceDiff]) -> None:
    """A replaced resource's id and ARN change, which the offline cloud (ids derived from names) cannot show."""
    handled: set[str] = set()
    while pending := [u for u, d in diffs.items() if d.action in ("replace", "delete") and u not in handled]:
        for urn in pending:
            handled.add(urn)
            references = _minted(before[urn]) if urn in before else set()
            for other, record in after.items():
                if other == urn or other not in before or not record["custom"]:
                    continue
                paths = sorted({top_key(p) for p in _referring_paths(record["inputs"], references)})
                if paths:
                    _mark(diffs, record, paths, diffs[urn].name)


def _minted(record: Record) -> set[str]:
    """What a replacement changes of a resource: the references the cloud minted for it (ids, ARNs), not those
    that echo its own inputs (a bucket object's `bucket`, a bucket's name), which stay what the program says."""
    given = set(_strings(record["inputs"]))
    return {r for r in record["references"] if len(r) >= DISTINCTIVE and r not in given}


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str):
        yield value


def _mark(diffs: dict[str, ResourceDiff], record: Record, paths: list[str], cause: str) -> None:
    replaced = REPLACED_BY.get(record["type"], frozenset())
    diff = diffs.setdefault(record["urn"], ResourceDiff(record["urn"], record["type"], record["name"], "update"))
    diff.protected = diff.protected or record["protect"]
    if cause not in diff.because_of:
        diff.because_of.append(cause)
    known = {c.path for c in diff.changes}
    for path in paths:
        if path not in known and path not in record["ignoreChanges"]:
            diff.changes.append(Change(path, "(id of the replaced resource)", "(new id)", path in replaced))
    if diff.action == "update" and any(p in replaced for p in paths):
        diff.action = "replace"


def _referring_paths(value: Any, references: set[str], path: str = "") -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _referring_paths(item, references, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _referring_paths(item, references, f"{path}[{i}]")
    elif isinstance(value, str) and any(ref in value for ref in references):
        yield path
