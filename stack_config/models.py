"""Typed, validated stack configuration: one model per config key of the `swarm-cluster` namespace.

Field names are the camelCase keys users write in `Pulumi.<stack>.yaml`; every model forbids unknown
keys so a typo fails the run instead of silently falling back to a default.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from stack_config.instance_types import instance_type_problem


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _matching(pattern: str, what: str) -> AfterValidator:
    """A format check whose error says what is allowed in words, not as a regular expression."""

    def check(value: str) -> str:
        if not re.fullmatch(pattern, value):
            raise ValueError(f"{value!r} is not valid; expected {what}")
        return value

    return AfterValidator(check)


def _cidr(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError as error:
        raise ValueError(
            f"{value!r} is not a CIDR block ({error}); use a network address such as 10.0.0.0/16"
        ) from None


def _tag_key(value: str) -> str:
    if not 1 <= len(value) <= 128:
        raise ValueError(f"tag key {value!r} has {len(value)} characters; AWS allows 1 to 128")
    if value.lower().startswith("aws:"):
        raise ValueError(f"tag key {value!r} uses the reserved 'aws:' prefix; choose another prefix")
    # Nodes read their tags from instance metadata, which restricts the characters of tag keys.
    if not re.fullmatch(r"[A-Za-z0-9+=.,_:@-]+", value) or value in (".", "..", "_index"):
        raise ValueError(
            f"tag key {value!r} cannot be exposed in instance metadata; use letters, digits and + - = . , _ : @"
        )
    return value


def _tag_value(value: str) -> str:
    if len(value) > 256:
        raise ValueError(f"the value has {len(value)} characters; AWS tag values allow at most 256")
    return value


def _pinned(value: str) -> str:
    if value.endswith(":latest"):
        raise ValueError(f"{value!r} is not pinned; name a version tag so every node runs the same image")
    return value


def _environment(value: str) -> str:
    # AWS names start with it: load balancer names may not start with "internal-", security groups with "sg-".
    if value.startswith(("internal", "sg-")):
        raise ValueError(f"{value!r} cannot start AWS resource names; avoid the prefixes 'internal' and 'sg-'")
    return value


def _instance_type(value: str) -> str:
    problem = instance_type_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def _docker_label_key(value: str) -> str:
    if value in ("docker.environment", "docker.role"):
        raise ValueError(f"{value!r} is set from cluster.environment and the group's role; remove it")
    return value


Cidr = Annotated[str, AfterValidator(_cidr)]
Name = Annotated[str, _matching(r"[a-z][a-z0-9-]{0,20}[a-z0-9]", "a name of 2-22 lower-case letters, digits or '-'")]
AmiId = Annotated[str, _matching(r"ami-([0-9a-f]{8}|[0-9a-f]{17})", "an AMI id such as ami-0123456789abcdef0")]
VpcId = Annotated[str, _matching(r"vpc-([0-9a-f]{8}|[0-9a-f]{17})", "a VPC id such as vpc-0123456789abcdef0")]
SubnetId = Annotated[
    str, _matching(r"subnet-([0-9a-f]{8}|[0-9a-f]{17})", "a subnet id such as subnet-0123456789abcdef0")
]
SecurityGroupId = Annotated[
    str, _matching(r"sg-([0-9a-f]{8}|[0-9a-f]{17})", "a security group id such as sg-0123456789abcdef0")
]
ZoneId = Annotated[str, _matching(r"Z[A-Z0-9]{1,31}", "a Route53 hosted zone id such as Z0123456789ABCDEFGHIJ")]
InstanceType = Annotated[
    str,
    _matching(r"[a-z][a-z0-9-]*\.[a-z0-9]+", "an EC2 instance type such as t3.medium or m6i.large"),
    AfterValidator(_instance_type),
]
AvailabilityZone = Annotated[
    str, _matching(r"[a-z]{2}(-[a-z]+)+-\d[a-z]", "an availability zone name such as eu-west-1a")
]
Region = Annotated[str, _matching(r"[a-z]{2}(-[a-z]+)+-\d", "an AWS region such as eu-west-1")]
DnsName = Annotated[
    str,
    _matching(
        r"(?=.{1,200}$)([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+[a-z][a-z0-9-]*[a-z0-9]",
        "a lower-case DNS domain such as staging.example.internal",
    ),
]
ImageRef = Annotated[
    str,
    _matching(
        r"[a-z0-9][a-z0-9._/-]*:[A-Za-z0-9][A-Za-z0-9._-]*",
        "an image reference with a pinned tag such as registry:2.8.3 ('latest' is refused)",
    ),
    AfterValidator(_pinned),
]
# The rendered config.yml (S3 keys, objectacl, health checks) is written for distribution 2.8.
RegistryImage = Annotated[
    ImageRef, _matching(r"([a-z0-9._-]+/)*registry:2\.8\.[0-9]+", "a registry 2.8.x image such as registry:2.8.3")
]
EnvVarName = Annotated[
    str, _matching(r"[A-Z][A-Z0-9_]*", "an environment variable name of upper-case letters, digits and '_'")
]
KmsKeyArn = Annotated[
    str,
    _matching(
        r"arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+",
        "a KMS key ARN such as arn:aws:kms:eu-west-1:123456789012:key/<key id> (IAM cannot grant use of an alias)",
    ),
]
SshPublicKey = Annotated[
    str,
    _matching(
        r"(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+={0,2}( [^\n]*)?",
        "an OpenSSH public key line (ssh-ed25519, ssh-rsa or ecdsa-sha2-*)",
    ),
]
BucketName = Annotated[
    str,
    _matching(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", "an S3 bucket name of 3-63 lower-case letters, digits, '.' or '-'"),
]
DeviceName = Annotated[
    str, _matching(r"/dev/(sd[a-z]1?|xvd[a-z])", "a root device name such as /dev/sda1 or /dev/xvda")
]
TagKey = Annotated[str, AfterValidator(_tag_key)]
TagValue = Annotated[str, AfterValidator(_tag_value)]
LabelKey = Annotated[
    str,
    _matching(r"docker\.[a-z0-9][a-z0-9.-]*[a-z0-9]", "a lower-case docker.* label key such as docker.tier"),
    AfterValidator(_docker_label_key),
]
LabelValue = Annotated[
    str, _matching(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}", "a label value of 1-63 letters, digits, '.', '_' or '-'")
]
RuleDescription = Annotated[
    str,
    _matching(
        r"[A-Za-z0-9. _:/()#,@\[\]+=&;{}!$*-]{1,255}",
        "a description AWS accepts: 1-255 of letters, digits, spaces and . _ - : / ( ) # , @ [ ] + = & ; { } ! $ *",
    ),
]
EnvironmentName = Annotated[Name, AfterValidator(_environment)]
Port = Annotated[int, Field(ge=1, le=65535)]
Percent = Annotated[int, Field(ge=1, le=100)]
VolumeSize = Annotated[int, Field(ge=8, le=16384)]
GroupSize = Annotated[int, Field(ge=0, le=100)]
# Upper bound: a refresh waits this long per batch, and the termination hook's global timeout (100 heartbeat
# timeouts) must leave room for it.
DrainWindow = Annotated[int, Field(ge=30, le=3600)]


class Subnet(Strict):
    id: SubnetId
    availabilityZone: AvailabilityZone
    cidr: Cidr


class Network(Strict):
    """The existing VPC the cluster runs in; nodes live in its private subnets."""

    vpcId: VpcId
    vpcCidr: Cidr
    subnets: list[Subnet] = Field(min_length=2)

    @property
    def availability_zones(self) -> set[str]:
        return {s.availabilityZone for s in self.subnets}


class Dns(Strict):
    """Private Route53 zone for internal names (consul.<zone>, docker.<zone>, swarm.<zone>)."""

    internalZone: DnsName
    existingZoneId: ZoneId | None = None


class Access(Strict):
    """Who may reach the cluster's administrative ports. Empty lists mean nobody."""

    adminCidrs: list[Cidr] = Field(default_factory=list)
    adminSecurityGroupIds: list[SecurityGroupId] = Field(default_factory=list)
    sshCidrs: list[Cidr] = Field(default_factory=list)
    sshAuthorizedKeys: list[SshPublicKey] = Field(default_factory=list)
    ssmSessionManager: bool = False


class RancherOS(Strict):
    amiId: AmiId
    kmsKeyArn: KmsKeyArn | None = None


class Swarm(Strict):
    image: ImageRef = "swarm:1.2.9"


class Consul(Strict):
    image: ImageRef = "hashicorp/consul:1.20.2"
    serverCount: Annotated[int, Field(ge=1, le=7)] = 3
    instanceType: InstanceType = "t3.small"
    rootVolumeSizeGb: VolumeSize = 20


class Registry(Strict):
    image: RegistryImage = "registry:2.8.3"
    replicas: Annotated[int, Field(ge=1, le=5)] = 1
    instanceType: InstanceType = "t3.small"
    port: Port = 5000
    rootVolumeSizeGb: VolumeSize = 20
    bucketName: BucketName


class TagVariable(Strict):
    """An instance tag whose value becomes an environment variable on every node."""

    tag: TagKey
    variable: EnvVarName
    value: TagValue


class Ingress(Strict):
    """A port a group exposes beyond the cluster, e.g. 80/443 on the frontend."""

    port: Port
    protocol: Literal["tcp", "udp"] = "tcp"
    cidrs: list[Cidr] = Field(min_length=1)
    description: RuleDescription


class Scaling(Strict):
    cpuTargetPercent: Percent = 60
    disableScaleIn: bool = False


class NodeGroup(Strict):
    name: Name
    role: Name
    swarmManager: bool = False
    instanceType: InstanceType
    minSize: GroupSize
    desiredCapacity: GroupSize
    maxSize: Annotated[int, Field(ge=1, le=100)]
    rootVolumeSizeGb: VolumeSize = 30
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict)
    ingress: list[Ingress] = Field(default_factory=list)
    scaling: Scaling = Field(default_factory=Scaling)
    minHealthyPercentage: Annotated[int, Field(ge=0, le=100)] = 90
    protectFromScaleIn: bool | None = None
    drainWindowSeconds: DrainWindow = Field(
        300,
        description="Longest a terminating node waits for Swarm to restart its rescheduled containers elsewhere "
        "before it stops them (30-3600 s); part of every scale-in and instance refresh.",
    )

    @property
    def scale_in_protected(self) -> bool:
        return self.swarmManager if self.protectFromScaleIn is None else self.protectFromScaleIn

    @property
    def autoscaled(self) -> bool:
        return self.minSize != self.maxSize


class Cluster(Strict):
    environment: EnvironmentName
    highAvailability: bool


class StackConfig(Strict):
    """Everything under the `swarm-cluster:` namespace of one stack file."""

    region: Region  # read from `aws:region`, so the provider and the program cannot disagree
    cluster: Cluster
    network: Network
    dns: Dns
    access: Access = Field(default_factory=Access)
    rancheros: RancherOS
    swarm: Swarm = Field(default_factory=Swarm)
    consul: Consul = Field(default_factory=Consul)
    registry: Registry
    tagVariables: list[TagVariable] = Field(default_factory=list)
    tags: dict[TagKey, TagValue] = Field(default_factory=dict)
    nodeGroups: list[NodeGroup] = Field(min_length=1)
