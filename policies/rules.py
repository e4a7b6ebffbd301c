"""CrossGuard policies for the swarm-cluster stacks.

Importable on its own (tests import ``policies.rules``; the pack's ``__main__.py`` imports it as ``rules``), so it
must import nothing from this repository.

Properties arrive in the provider's wire names (camelCase), numbers may be floats, and during ``pulumi preview``
any value computed from another resource's output is *unknown*: the engine hands the policy a proxy that raises
``UnknownValueError`` on reading one. Every rule reads through the helpers below, which turn an unknown into
``UNKNOWN``; a rule that meets one skips that item rather than report a violation it cannot prove.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import (
    UNKNOWN_ARCHIVE_VALUE,
    UNKNOWN_ARRAY_VALUE,
    UNKNOWN_ASSET_VALUE,
    UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE,
    UNKNOWN_OBJECT_VALUE,
    UNKNOWN_STRING_VALUE,
    UnknownValueError,
)

PACK_NAME: Final = "swarm-cluster-guardrails"

# Resource type tokens (pulumi-aws 7.x).
SECURITY_GROUP: Final = "aws:ec2/securityGroup:SecurityGroup"
SECURITY_GROUP_RULE: Final = "aws:ec2/securityGroupRule:SecurityGroupRule"
VPC_INGRESS_RULE: Final = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EBS_VOLUME: Final = "aws:ebs/volume:Volume"
LAUNCH_TEMPLATE: Final = "aws:ec2/launchTemplate:LaunchTemplate"
INSTANCE: Final = "aws:ec2/instance:Instance"
LAUNCH_CONFIGURATION: Final = "aws:ec2/launchConfiguration:LaunchConfiguration"
AUTOSCALING_GROUP: Final = "aws:autoscaling/group:Group"
BUCKET_TYPES: Final = frozenset(("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"))
PUBLIC_ACCESS_BLOCK_TYPES: Final = frozenset(("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",))
ENCRYPTION_TYPES: Final = frozenset(
    (
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
    )
)
VERSIONING_TYPES: Final = frozenset(
    ("aws:s3/bucketVersioning:BucketVersioning", "aws:s3/bucketVersioningV2:BucketVersioningV2")
)

# SSH, Docker API (plain, TLS), Swarm manager, registry, Serf gossip, VXLAN overlay, Consul RPC/Serf and HTTP.
CLUSTER_PORTS: Final = (22, 2375, 2376, 4000, 4789, 5000, 7946, 8300, 8301, 8302, 8500)
_PORT_PROTOCOLS: Final = frozenset(("tcp", "udp", "sctp", "6", "17", "132"))
_ALL_PROTOCOLS: Final = frozenset(("-1", "all"))

USER_DATA_LIMIT: Final = 16 * 1024  # bytes of user data before base64 encoding (EC2's limit)

ENVIRONMENT_TAG: Final = "docker.environment"
COMPONENT_TAG: Final = "cluster.component"
PRODUCTION: Final = "production"
QUORUM_COMPONENTS: Final = frozenset(("swarm-manager", "consul-server"))
MIN_PRODUCTION_SUBNETS: Final = 2


# --------------------------------------------------------------------------------------------------------------------
# Reading properties that may be unknown
# --------------------------------------------------------------------------------------------------------------------


class _Unknown:
    _instance: _Unknown | None = None

    def __new__(cls) -> _Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Final = _Unknown()
"""Stands for a value that cannot be known until the update runs."""

_SENTINELS: Final = frozenset(
    (
        UNKNOWN_BOOLEAN_VALUE,
        UNKNOWN_NUMBER_VALUE,
        UNKNOWN_STRING_VALUE,
        UNKNOWN_ARRAY_VALUE,
        UNKNOWN_ASSET_VALUE,
        UNKNOWN_ARCHIVE_VALUE,
        UNKNOWN_OBJECT_VALUE,
    )
)


def is_unknown(value: object) -> bool:
    return value is UNKNOWN or (isinstance(value, str) and value in _SENTINELS)


def _is_list(value: object) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def get(obj: object, *path: str | int) -> Any:
    """The value at ``path`` inside ``obj``: ``None`` if any step is missing, ``UNKNOWN`` if any step is unknown."""
    current: Any = obj
    for key in path:
        if is_unknown(current):
            return UNKNOWN
        if isinstance(key, int):
            if not _is_list(current) or not -len(current) <= key < len(current):
                return None
        elif not isinstance(current, Mapping):
            return None
        try:
            current = current[key]
        except UnknownValueError:
            return UNKNOWN
        except (KeyError, IndexError):
            return None
    return UNKNOWN if is_unknown(current) else current


def elements(value: object) -> list[Any] | _Unknown:
    """The items of a list property (``[]`` if absent); an item that is unknown becomes ``UNKNOWN``."""
    if is_unknown(value):
        return UNKNOWN
    if value is None or not _is_list(value):
        return []
    assert isinstance(value, Sequence)
    return [get(value, i) for i in range(len(value))]


def number(value: object) -> float | _Unknown | None:
    if is_unknown(value):
        return UNKNOWN
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def truthy(value: object) -> bool | _Unknown:
    """Providers spell booleans as ``true`` or as the string ``"true"`` (launch template ``ebs.encrypted``)."""
    if is_unknown(value):
        return UNKNOWN
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return value is True


def asg_tags(props: Mapping[str, Any]) -> dict[str, Any] | _Unknown:
    """An autoscaling group's ``tags`` list (``{key, value, propagateAtLaunch}``) as a dict; values may be UNKNOWN."""
    items = elements(get(props, "tags"))
    if isinstance(items, _Unknown):
        return UNKNOWN
    tags: dict[str, Any] = {}
    for item in items:
        key = get(item, "key")
        if isinstance(key, str):
            tags[key] = get(item, "value")
    return tags


def _stack_name() -> str | None:
    """The stack being analyzed. The CLI starts a policy pack with ``PULUMI_STACK`` set (and pulumi-policy configures
    ``pulumi.get_stack()`` from the same variable before each analysis); read the variable itself so a test process
    whose Pulumi runtime settings were left behind by mocks cannot leak a stack name into a policy."""
    name = os.environ.get("PULUMI_STACK", "").strip()
    return name or None


def is_production(props: Mapping[str, Any]) -> bool | _Unknown:
    """True if the stack is ``production`` or the group is tagged ``docker.environment=production``.

    Either signal is enough (fail closed): the engine's stack name when running under the CLI, the tag otherwise
    (offline checks, or a stack whose name differs from its environment)."""
    stack = _stack_name()
    if stack is not None and stack.rsplit("/", 1)[-1] == PRODUCTION:
        return True
    tags = asg_tags(props)
    if isinstance(tags, _Unknown):
        return UNKNOWN
    environment = tags.get(ENVIRONMENT_TAG)
    if is_unknown(environment):
        return UNKNOWN
    return environment == PRODUCTION


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


# --------------------------------------------------------------------------------------------------------------------
# No cluster port open to the internet
# --------------------------------------------------------------------------------------------------------------------


def _protocol(value: object) -> str | _Unknown | None:
    if is_unknown(value):
        return UNKNOWN
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(int(value))
    if isinstance(value, str):
        return value.strip().lower()
    return None


def exposed_cluster_ports(protocol: object, from_port: object, to_port: object) -> tuple[int, ...] | _Unknown:
    """The cluster ports a rule with this protocol and port range reaches; ``-1``/``all`` means every port."""
    proto = _protocol(protocol)
    if isinstance(proto, _Unknown):
        return UNKNOWN
    if proto in _ALL_PROTOCOLS:
        return CLUSTER_PORTS
    if proto not in _PORT_PROTOCOLS:
        return ()  # icmp, esp, ...: fromPort/toPort are not ports
    low, high = number(from_port), number(to_port)
    if isinstance(low, _Unknown) or isinstance(high, _Unknown):
        return UNKNOWN
    first = 0 if low is None or low < 0 else int(low)
    last = 65535 if high is None or high < 0 else int(high)
    return tuple(port for port in CLUSTER_PORTS if first <= port <= last)


def public_cidrs(values: Iterable[object]) -> list[str]:
    """The CIDRs among ``values`` that cover the whole address space (``0.0.0.0/0``, ``::/0``); unknowns are skipped."""
    found: list[str] = []
    for value in values:
        if not isinstance(value, str) or is_unknown(value):
            continue
        try:
            if ipaddress.ip_network(value.strip(), strict=False).prefixlen == 0:
                found.append(value)
        except ValueError:
            continue
    return found


def _cidr_list(value: object) -> list[Any]:
    items = elements(value)
    return [] if isinstance(items, _Unknown) else items


def _describe_ports(protocol: object, from_port: object, to_port: object) -> str:
    proto = _protocol(protocol)
    if proto in _ALL_PROTOCOLS:
        return "all traffic"
    low, high = number(from_port), number(to_port)
    if isinstance(low, float) and isinstance(high, float):
        span = f"{int(low)}" if low == high else f"{int(low)}-{int(high)}"
        return f"{proto} {span}"
    return f"{proto} (all ports)"


def _check_ingress(
    where: str, protocol: object, from_port: object, to_port: object, cidrs: list[Any], report: ReportViolation
) -> None:
    ports = exposed_cluster_ports(protocol, from_port, to_port)
    if isinstance(ports, _Unknown) or not ports:
        return
    public = public_cidrs(cidrs)
    if public:
        report(
            f"{where} allows {_describe_ports(protocol, from_port, to_port)} from {', '.join(public)}, which reaches "
            f"cluster port(s) {', '.join(str(p) for p in ports)}; allow only VPN, office or VPC ranges.",
            None,
        )


def validate_no_public_cluster_ports(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = args.props
    if args.resource_type == SECURITY_GROUP:
        rules = elements(get(props, "ingress"))
        if isinstance(rules, _Unknown):
            return
        for i, rule in enumerate(rules):
            if is_unknown(rule):
                continue
            cidrs = _cidr_list(get(rule, "cidrBlocks")) + _cidr_list(get(rule, "ipv6CidrBlocks"))
            _check_ingress(
                f"ingress[{i}]",
                get(rule, "protocol"),
                get(rule, "fromPort"),
                get(rule, "toPort"),
                cidrs,
                report,
            )
    elif args.resource_type == SECURITY_GROUP_RULE:
        if get(props, "type") != "ingress":
            return
        cidrs = _cidr_list(get(props, "cidrBlocks")) + _cidr_list(get(props, "ipv6CidrBlocks"))
        _check_ingress(
            "the ingress rule", get(props, "protocol"), get(props, "fromPort"), get(props, "toPort"), cidrs, report
        )
    elif args.resource_type == VPC_INGRESS_RULE:
        cidrs = [get(props, "cidrIpv4"), get(props, "cidrIpv6")]
        _check_ingress(
            "the ingress rule", get(props, "ipProtocol"), get(props, "fromPort"), get(props, "toPort"), cidrs, report
        )


no_public_cluster_ports = ResourceValidationPolicy(
    name="no-public-cluster-ports",
    description=(
        "No security group ingress from 0.0.0.0/0 or ::/0 may reach SSH, the Docker API, Swarm, the registry, "
        "the overlay network or Consul (ports 22, 2375, 2376, 4000, 4789, 5000, 7946, 8300-8302, 8500)."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    severity=Severity.CRITICAL,
    validate=validate_no_public_cluster_ports,
)


# --------------------------------------------------------------------------------------------------------------------
# EBS encryption
# --------------------------------------------------------------------------------------------------------------------


# Instances and launch configurations describe their disks alike: one rootBlockDevice and a list of ebsBlockDevices.
_INSTANCE_DISK_TYPES: Final = frozenset((INSTANCE, LAUNCH_CONFIGURATION))


def _device_label(device: object) -> str:
    name = get(device, "deviceName")
    return f" ({name})" if isinstance(name, str) else ""


def _check_instance_disks(props: Mapping[str, Any], report: ReportViolation) -> None:
    root = get(props, "rootBlockDevice")
    if root is None:
        # The root volume then follows the AMI's snapshot, unencrypted for most public AMIs; the account's
        # encryption-by-default setting could still save it, but a policy cannot see that, so fail closed.
        report(
            "rootBlockDevice is not declared, so the root volume is encrypted only if the AMI or the account default "
            "says so; declare rootBlockDevice with encrypted=True.",
            None,
        )
    elif truthy(get(root, "encrypted")) is False:
        report("rootBlockDevice is not encrypted; set encrypted=True.", None)
    devices = elements(get(props, "ebsBlockDevices"))
    if isinstance(devices, _Unknown):
        return
    for i, device in enumerate(devices):
        if truthy(get(device, "encrypted")) is False:
            report(f"ebsBlockDevices[{i}]{_device_label(device)} is not encrypted; set encrypted=True.", None)


def validate_ebs_encrypted(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type == EBS_VOLUME:
        if truthy(get(args.props, "encrypted")) is False:
            report("the volume is not encrypted; set encrypted=True.", None)
    elif args.resource_type == LAUNCH_TEMPLATE:
        mappings = elements(get(args.props, "blockDeviceMappings"))
        if isinstance(mappings, _Unknown):
            return
        for i, mapping in enumerate(mappings):
            ebs = get(mapping, "ebs")
            if ebs is None or is_unknown(ebs):
                continue  # an instance-store or no-device mapping, or not known yet
            if truthy(get(ebs, "encrypted")) is False:
                report(
                    f'blockDeviceMappings[{i}]{_device_label(mapping)} is not encrypted; set ebs.encrypted to "true".',
                    None,
                )
    elif args.resource_type in _INSTANCE_DISK_TYPES:
        _check_instance_disks(args.props, report)


ebs_encrypted = ResourceValidationPolicy(
    name="ebs-encrypted",
    description=(
        "EBS volumes, launch-template block devices and instance root/EBS devices (instances and launch "
        "configurations) must be encrypted."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    severity=Severity.HIGH,
    validate=validate_ebs_encrypted,
)


# --------------------------------------------------------------------------------------------------------------------
# S3 buckets: public access block, encryption and versioning (separate resources in pulumi-aws 7)
# --------------------------------------------------------------------------------------------------------------------


def _public_access_blocked(props: Mapping[str, Any]) -> bool | _Unknown:
    flags = [
        truthy(get(props, key))
        for key in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    ]
    if False in flags:
        return False
    return UNKNOWN if UNKNOWN in flags else True


def _encryption_configured(rules: object) -> bool | _Unknown:
    items = elements(rules)
    if isinstance(items, _Unknown):
        return UNKNOWN
    saw_unknown = False
    for rule in items:
        algorithm = get(rule, "applyServerSideEncryptionByDefault", "sseAlgorithm")
        if is_unknown(algorithm):
            saw_unknown = True
        elif isinstance(algorithm, str) and algorithm:
            return True
    return UNKNOWN if saw_unknown else False


def _sse_resource_ok(props: Mapping[str, Any]) -> bool | _Unknown:
    return _encryption_configured(get(props, "rules"))


def _versioning_resource_ok(props: Mapping[str, Any]) -> bool | _Unknown:
    status = get(props, "versioningConfiguration", "status")
    return UNKNOWN if is_unknown(status) else status == "Enabled"


def _inline_encryption(bucket: Mapping[str, Any]) -> bool | _Unknown:
    # Deprecated inline block on aws.s3.Bucket:
    # serverSideEncryptionConfiguration.rule.applyServerSideEncryptionByDefault
    rule = get(bucket, "serverSideEncryptionConfiguration", "rule")
    if rule is None:
        return False
    return UNKNOWN if is_unknown(rule) else _encryption_configured([rule])


def _inline_versioning(bucket: Mapping[str, Any]) -> bool | _Unknown:
    return truthy(get(bucket, "versioning", "enabled"))


@dataclass(frozen=True)
class _Requirement:
    what: str
    companion_types: frozenset[str]
    companion_ok: Callable[[Mapping[str, Any]], bool | _Unknown]
    fix: str
    inline_ok: Callable[[Mapping[str, Any]], bool | _Unknown] | None = None


_REQUIREMENTS: Final = (
    _Requirement(
        "a public access block with blockPublicAcls, blockPublicPolicy, ignorePublicAcls and restrictPublicBuckets "
        "all true",
        PUBLIC_ACCESS_BLOCK_TYPES,
        _public_access_blocked,
        "add an aws.s3.BucketPublicAccessBlock with all four flags true",
    ),
    _Requirement(
        "default server-side encryption",
        ENCRYPTION_TYPES,
        _sse_resource_ok,
        "add an aws.s3.BucketServerSideEncryptionConfiguration with an apply_server_side_encryption_by_default rule",
        _inline_encryption,
    ),
    _Requirement(
        "versioning enabled",
        VERSIONING_TYPES,
        _versioning_resource_ok,
        'add an aws.s3.BucketVersioning with versioning_configuration status "Enabled"',
        _inline_versioning,
    ),
)


@dataclass
class _Companion:
    resource: PolicyResource
    targets: set[str] = field(default_factory=set)  # URNs of the stack's buckets it configures
    undetermined: bool = False  # its bucket is unknown and no dependency names it: it may configure any bucket


def _bucket_name(bucket: PolicyResource) -> str | _Unknown | None:
    name = get(bucket.props, "bucket")
    if is_unknown(name):
        return UNKNOWN
    return name if isinstance(name, str) and name else None


def _match_companion(resource: PolicyResource, buckets: list[PolicyResource]) -> _Companion:
    """Which of ``buckets`` a companion resource configures.

    Two keys, either enough: the engine's property dependencies of its ``bucket`` input (works in a preview, where
    ``bucket.id`` of a bucket being created is still unknown), and equality of its ``bucket`` value with a bucket's
    ``bucket`` name (our components always name buckets explicitly; this is also the only key offline, where recorded
    resources carry no dependency information)."""
    companion = _Companion(resource)
    bucket_urns = {b.urn for b in buckets}
    for dependency in resource.property_dependencies.get("bucket", []):
        if dependency.urn in bucket_urns:
            companion.targets.add(dependency.urn)
    value = get(resource.props, "bucket")
    if is_unknown(value):
        companion.undetermined = not companion.targets
        return companion
    for bucket in buckets:
        if isinstance(value, str) and value and _bucket_name(bucket) == value:
            companion.targets.add(bucket.urn)
    if not companion.targets and isinstance(value, str):
        # Names no bucket whose name is known: it may configure a bucket whose name is still unknown.
        companion.undetermined = any(isinstance(_bucket_name(b), _Unknown) for b in buckets)
    return companion


def _bucket_verdict(bucket: PolicyResource, requirement: _Requirement, companions: list[_Companion]) -> str | None:
    """A violation message, or None if the requirement holds or cannot be decided yet."""
    undecided = False
    if requirement.inline_ok is not None:
        inline = requirement.inline_ok(bucket.props)
        if inline is True:
            return None
        undecided = undecided or inline is UNKNOWN
    matched = [c for c in companions if bucket.urn in c.targets]
    failing: list[str] = []
    for companion in matched:
        verdict = requirement.companion_ok(companion.resource.props)
        if verdict is True:
            return None
        if verdict is UNKNOWN:
            undecided = True
        else:
            failing.append(companion.resource.name)
    if undecided or any(c.undetermined for c in companions):
        return None
    if failing:
        return (
            f"bucket {bucket.name} lacks {requirement.what}: {', '.join(failing)} does not provide it; "
            f"{requirement.fix}."
        )
    return f"bucket {bucket.name} lacks {requirement.what}; {requirement.fix}."


def validate_s3_buckets(args: StackValidationArgs, report: ReportViolation) -> None:
    buckets = [r for r in args.resources if r.resource_type in BUCKET_TYPES]
    if not buckets:
        return
    for requirement in _REQUIREMENTS:
        companions = [
            _match_companion(r, buckets) for r in args.resources if r.resource_type in requirement.companion_types
        ]
        for bucket in buckets:
            message = _bucket_verdict(bucket, requirement, companions)
            if message is not None:
                report(message, bucket.urn)


s3_bucket_protected = StackValidationPolicy(
    name="s3-bucket-protected",
    description=(
        "Every S3 bucket must have a public access block with all four flags true, default server-side "
        "encryption and versioning enabled."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    severity=Severity.HIGH,
    validate=validate_s3_buckets,
)


# --------------------------------------------------------------------------------------------------------------------
# Autoscaling groups
# --------------------------------------------------------------------------------------------------------------------


def _launch_template_versions(props: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    yield "launchTemplate.version", get(props, "launchTemplate", "version")
    spec = ("mixedInstancesPolicy", "launchTemplate")
    yield (
        "mixedInstancesPolicy.launchTemplate.launchTemplateSpecification.version",
        get(props, *spec, "launchTemplateSpecification", "version"),
    )
    overrides = elements(get(props, *spec, "overrides"))
    if isinstance(overrides, _Unknown):
        return
    for i, override in enumerate(overrides):
        yield (
            f"mixedInstancesPolicy.launchTemplate.overrides[{i}].launchTemplateSpecification.version",
            get(override, "launchTemplateSpecification", "version"),
        )


def validate_asg_pinned_launch_template(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != AUTOSCALING_GROUP:
        return
    for path, version in _launch_template_versions(args.props):
        if isinstance(version, str) and version.strip() == "$Latest":
            report(
                f'{path} is "$Latest", so any new template version rolls out untested on the next scale-out; '
                "use the template's latest_version (a number) and roll it with an instance refresh.",
                None,
            )


asg_pinned_launch_template = ResourceValidationPolicy(
    name="asg-no-latest-launch-template",
    description='An autoscaling group must not use launch template version "$Latest".',
    enforcement_level=EnforcementLevel.MANDATORY,
    severity=Severity.MEDIUM,
    validate=validate_asg_pinned_launch_template,
)


def validate_production_asg_subnets(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != AUTOSCALING_GROUP or is_production(args.props) is not True:
        return
    subnets = elements(get(args.props, "vpcZoneIdentifiers"))
    if isinstance(subnets, _Unknown):
        return
    known = {s for s in subnets if isinstance(s, str)}
    unknown = sum(1 for s in subnets if is_unknown(s))
    if len(known) >= MIN_PRODUCTION_SUBNETS:
        return
    if unknown and len(known) + unknown >= MIN_PRODUCTION_SUBNETS:
        return  # subnet ids not known yet may or may not be distinct
    report(
        f"a production group spans {_plural(len(known), 'subnet')} (vpcZoneIdentifiers); it needs at least "
        f"{MIN_PRODUCTION_SUBNETS} in different availability zones.",
        None,
    )


production_asg_subnets = ResourceValidationPolicy(
    name="production-asg-multi-subnet",
    description="Every autoscaling group in production must span at least two subnets.",
    enforcement_level=EnforcementLevel.MANDATORY,
    severity=Severity.HIGH,
    validate=validate_production_asg_subnets,
)


def _whole(value: float | _Unknown | None) -> int | None:
    return int(value) if isinstance(value, float) and value.is_integer() else None


def validate_quorum_group_size(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != AUTOSCALING_GROUP:
        return
    tags = asg_tags(args.props)
    if isinstance(tags, _Unknown):
        return
    component = tags.get(COMPONENT_TAG)
    if component not in QUORUM_COMPONENTS:
        return
    sizes = {key: number(get(args.props, key)) for key in ("desiredCapacity", "minSize", "maxSize")}
    if any(isinstance(v, _Unknown) for v in sizes.values()):
        return
    desired = sizes["desiredCapacity"] if sizes["desiredCapacity"] is not None else sizes["minSize"]
    checked = {"desiredCapacity": desired}
    low, high = _whole(sizes["minSize"]), _whole(sizes["maxSize"])
    if low is not None and low == high:
        checked.update(minSize=sizes["minSize"], maxSize=sizes["maxSize"])
    for key, value in checked.items():
        whole = _whole(value)
        if whole is not None and whole % 2 == 0:
            report(
                f"{key} is {whole}; a {component} group needs an odd size (1, 3, 5) so a majority can always "
                "form a quorum.",
                None,
            )


quorum_group_size = ResourceValidationPolicy(
    name="quorum-groups-odd-size",
    description="Swarm manager and Consul server groups must have an odd size.",
    enforcement_level=EnforcementLevel.MANDATORY,
    severity=Severity.HIGH,
    validate=validate_quorum_group_size,
)


# --------------------------------------------------------------------------------------------------------------------
# User data size
# --------------------------------------------------------------------------------------------------------------------


def user_data_bytes(value: object, *, encoded: bool) -> int | None:
    """The size of user data before base64 encoding, or None if it is absent or unknown."""
    if not isinstance(value, str) or is_unknown(value):
        return None
    if encoded:
        try:
            return len(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            pass  # not valid base64: EC2 will reject it anyway; measure what was given
    return len(value.encode("utf-8"))


def validate_user_data_size(args: ResourceValidationArgs, report: ReportViolation) -> None:
    fields: tuple[tuple[str, bool], ...]
    if args.resource_type == LAUNCH_TEMPLATE:
        fields = (("userData", True),)
    elif args.resource_type == INSTANCE:
        fields = (("userData", False), ("userDataBase64", True))
    else:
        return
    for key, encoded in fields:
        size = user_data_bytes(get(args.props, key), encoded=encoded)
        if size is not None and size > USER_DATA_LIMIT:
            report(
                f"{key} is {size} bytes before base64 encoding; EC2 accepts at most {USER_DATA_LIMIT} "
                "(16 KB). Move large files to S3 or gzip the cloud-config.",
                None,
            )


user_data_size = ResourceValidationPolicy(
    name="user-data-size-limit",
    description="Launch template and instance user data must be at most 16 KB before base64 encoding.",
    enforcement_level=EnforcementLevel.MANDATORY,
    severity=Severity.MEDIUM,
    validate=validate_user_data_size,
)


POLICIES: Final[list[Policy]] = [
    no_public_cluster_ports,
    ebs_encrypted,
    s3_bucket_protected,
    asg_pinned_launch_template,
    user_data_size,
    production_asg_subnets,
    quorum_group_size,
]
