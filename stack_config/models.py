"""Typed, validated stack configuration: one model per config key of the `swarm-cluster` namespace.

Field names are the camelCase keys users write in `Pulumi.<stack>.yaml`; every model forbids unknown
keys so a typo fails the run instead of silently falling back to a default. Every field's description
is the user documentation: the README's configuration reference and the editor schema are generated
from these models (`python3 dev.py docs`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from stack_config.fields import (
    AmiId,
    AvailabilityZone,
    BucketName,
    Cidr,
    DnsName,
    DrainWindow,
    EnvironmentName,
    EnvVarName,
    GossipKey,
    GroupSize,
    ImageRef,
    InstanceType,
    KmsKeyArn,
    LabelKey,
    LabelValue,
    Name,
    Percent,
    Port,
    Region,
    RegistryImage,
    RuleDescription,
    SecretText,
    SecurityGroupId,
    SshPublicKey,
    SubnetId,
    TagKey,
    TagValue,
    VolumeSize,
    VpcId,
    ZoneId,
)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Subnet(Strict):
    id: SubnetId = Field(description="Id of an existing private subnet.")
    availabilityZone: AvailabilityZone = Field(description="The subnet's availability zone.")
    cidr: Cidr = Field(description="The subnet's CIDR block; it must lie inside `vpcCidr`.")


class Network(Strict):
    vpcId: VpcId = Field(description="Existing VPC id.")
    vpcCidr: Cidr = Field(description="The VPC's CIDR block; every subnet must lie inside it.")
    subnets: list[Subnet] = Field(
        min_length=2,
        description=(
            "Private subnets, one per availability zone; every group spans all of them. "
            "A highly available cluster needs subnets in at least 3 zones."
        ),
    )

    @property
    def availability_zones(self) -> set[str]:
        return {s.availabilityZone for s in self.subnets}


class Dns(Strict):
    internalZone: DnsName = Field(
        description="Private domain for the `consul.`, `docker.` and `swarm.` names, e.g. `staging.example.internal`."
    )
    existingZoneId: ZoneId | None = Field(
        None, description="Use this existing private hosted zone instead of creating one."
    )


class Access(Strict):
    adminCidrs: list[Cidr] = Field(
        default_factory=list,
        description=(
            "Who may reach the Swarm manager API (4000), Consul (8500) and the registry (5000). `0.0.0.0/0` is refused."
        ),
    )
    adminSecurityGroupIds: list[SecurityGroupId] = Field(
        default_factory=list,
        description="Security groups (e.g. a bastion's or CI runners') allowed the same as `adminCidrs`.",
    )
    sshCidrs: list[Cidr] = Field(
        default_factory=list,
        description="Who may reach SSH (22) on every host (Swarm nodes, Consul, registry). Empty: SSH closed.",
    )
    sshAuthorizedKeys: list[SshPublicKey] = Field(
        default_factory=list,
        description="OpenSSH public keys installed for the `rancher` user; password logins stay disabled.",
    )
    ssmSessionManager: bool = Field(
        False,
        description=(
            "Let every host role open AWS Systems Manager sessions: only the agent's Session Manager actions, "
            "not `AmazonSSMManagedInstanceCore`, which would let every host read every SSM parameter "
            "(needs an SSM agent on the image)."
        ),
    )


class RancherOS(Strict):
    amiId: AmiId = Field(
        description="RancherOS 1.5.x HVM AMI of the region; looked up at plan time for its root device name."
    )
    kmsKeyArn: KmsKeyArn | None = Field(
        None,
        description=(
            "KMS key (key ARN, not alias) for EBS volumes, the registry bucket and its objects, and the SSM "
            "parameters holding the secrets; without it the account's default EBS key, S3-managed keys (SSE-S3) "
            "and the account's `aws/ssm` key."
        ),
    )


class Rebalancer(Strict):
    """How the primary manager moves opted-in containers onto emptier nodes of a role (node_agents/primary.py)."""

    intervalSeconds: Annotated[int, Field(ge=30, le=3600)] = Field(
        60, description="Seconds between two rebalancing rounds."
    )
    gapThreshold: Annotated[int, Field(ge=1, le=100)] = Field(
        1, description="Act when a role's fullest and emptiest nodes differ by more than this many containers."
    )
    maxMovesPerInterval: Annotated[int, Field(ge=1, le=20)] = Field(
        1, description="Containers moved per round at most, one after the other."
    )
    minContainerAgeSeconds: Annotated[int, Field(ge=0, le=86400)] = Field(
        600, description="Containers running for less than this stay where they are (a moved one too)."
    )
    minNodeAgeSeconds: Annotated[int, Field(ge=0, le=86400)] = Field(
        300, description="Nodes the primary has seen healthy for less than this neither give nor take containers."
    )
    healthTimeoutSeconds: Annotated[int, Field(ge=10, le=1800)] = Field(
        120,
        description=(
            "How long a moved copy may take to run (or turn healthy) before it is removed and the original kept."
        ),
    )


class Swarm(Strict):
    image: ImageRef = Field("swarm:1.2.9", description="Classic Swarm image every node runs.")
    rebalancer: Rebalancer = Field(
        default_factory=Rebalancer,
        description=(
            'Tuning of rebalancing, for the roles whose groups set `rebalance` (see "Rebalancing after scale-out").'
        ),
    )


class ConsulSnapshots(Strict):
    """Snapshots of the Consul state (Swarm discovery, overlay networks) in the cluster bucket."""

    intervalMinutes: Annotated[int, Field(ge=1, le=1440)] = Field(
        5,
        description=(
            "Minutes between snapshots (the leader's only). A restore loses what was written since the last one "
            "(see [Consul snapshots and restore](#consul-snapshots-and-restore))."
        ),
    )
    retentionDays: Annotated[int, Field(ge=1, le=3650)] = Field(
        30, description="Days a snapshot is kept under `consul-snapshots/` before an S3 lifecycle rule expires it."
    )


class Consul(Strict):
    image: ImageRef = Field("hashicorp/consul:1.20.2", description="Consul server image.")
    serverCount: Annotated[int, Field(ge=1, le=7)] = Field(
        3, description="Number of Consul servers: odd, at least 3 with `highAvailability`."
    )
    instanceType: InstanceType = Field(
        "t3.small", description="Instance type of the servers (see [Instance types](#instance-types))."
    )
    rootVolumeSizeGb: VolumeSize = Field(
        20, description="Root volume size in GiB (Consul's data lives there and is replicated across servers)."
    )
    snapshots: ConsulSnapshots = Field(
        default_factory=ConsulSnapshots, description="Snapshots to S3, restored into a cluster that starts empty."
    )
    gossipEnforcement: Literal["full", "outgoing", "none"] = Field(
        "full",
        description=(
            "How strictly servers require encrypted gossip: `full`. `none` (send and accept plaintext) and "
            "`outgoing` (send encrypted, accept plaintext) are the two steps of enabling encryption on a running "
            "cluster (see [Gossip encryption](#gossip-encryption))."
        ),
    )


class Registry(Strict):
    image: RegistryImage = Field(
        "registry:2.8.3", description="Registry image (the rendered `config.yml` is written for distribution 2.8)."
    )
    replicas: Annotated[int, Field(ge=1, le=5)] = Field(
        1, description="Registry hosts. More than one needs `registryHttpSecret`."
    )
    instanceType: InstanceType = Field(
        "t3.small", description="Instance type of the registry hosts (see [Instance types](#instance-types))."
    )
    port: Port = Field(5000, description="Port of `docker.<zone>`.")
    rootVolumeSizeGb: VolumeSize = Field(20, description="Root volume size of the registry hosts in GiB.")
    bucketName: BucketName = Field(
        description="Name of the S3 bucket the program creates for the images (globally unique)."
    )


class TagVariable(Strict):
    tag: TagKey = Field(description="Tag key carried by every node, e.g. `example.db.host`.")
    variable: EnvVarName = Field(description="Variable name it becomes on every Swarm node, e.g. `DB_HOST`.")
    value: TagValue = Field(description="The value.")


class Ingress(Strict):
    port: Port = Field(description="Port opened on the group's security group.")
    protocol: Literal["tcp", "udp"] = Field("tcp", description="Protocol of the port.")
    cidrs: list[Cidr] = Field(
        min_length=1,
        description=(
            "Who may connect. Cluster ports (22, 2375, 2376, 4000, 4789, 5000, 7946, 8300-8302, 8500) "
            "may not be opened to the whole internet."
        ),
    )
    description: RuleDescription = Field(description="Description of the security group rule.")


class Scaling(Strict):
    cpuTargetPercent: Percent = Field(60, description="Average CPU the group's target tracking keeps.")
    disableScaleIn: bool = Field(
        False, description="Only scale out (for groups whose nodes should not be removed by load)."
    )
    reservationTargetPercent: Percent | None = Field(
        None,
        description=(
            "Capacity reservation (the larger of reserved CPU and memory, in percent) the group's second target "
            "tracking policy keeps, on the metric `CapacityReservation` of namespace `SwarmCluster/<environment>`. "
            "Default: 100 x (N-1)/N with N = max(minSize, 2), so one node's containers still fit on the others "
            "while it drains. Containers must declare `-m`/`-c` to count."
        ),
    )


class NodeGroup(Strict):
    name: Name = Field(
        description=(
            "Unique group name; AWS names are `<environment>-<name>`. Names starting with `cluster`, `nodes`, "
            "`consul`, `registry` or `swarm` are reserved."
        )
    )
    role: Name = Field(description="The `docker.role` engine label (`constraint:docker.role==web`).")
    swarmManager: bool = Field(
        False,
        description="Run `swarm manage` too; one group has it, with a fixed odd size, behind `swarm.<zone>:4000`.",
    )
    instanceType: InstanceType = Field(
        description="EC2 instance type of the group's nodes (see [Instance types](#instance-types))."
    )
    minSize: GroupSize = Field(description="Minimum instances.")
    desiredCapacity: GroupSize = Field(
        description=(
            "Initial instances; `minSize <= desiredCapacity <= maxSize`. An autoscaled group keeps the size its "
            'scaling chose afterwards (see "Autoscaled groups keep their size").'
        )
    )
    maxSize: Annotated[int, Field(ge=1, le=100)] = Field(
        description="Maximum instances. CPU target tracking is created only when `minSize < maxSize`."
    )
    rootVolumeSizeGb: VolumeSize = Field(30, description="Encrypted gp3 root volume size in GiB.")
    labels: dict[LabelKey, LabelValue] = Field(
        default_factory=dict,
        description="Extra engine labels (e.g. `docker.tier: edge`), also put on the nodes as tags.",
    )
    ingress: list[Ingress] = Field(default_factory=list, description="Ports opened beyond the cluster, e.g. 80/443.")
    scaling: Scaling = Field(default_factory=Scaling, description="CPU target tracking of an autoscaled group.")
    minHealthyPercentage: Annotated[int, Field(ge=0, le=100)] = Field(
        90,
        description="Share kept in service during an instance refresh; `100` launches replacements first.",
    )
    protectFromScaleIn: bool | None = Field(
        None, description="Protect instances from scale-in. Unset: `true` for the manager group, `false` otherwise."
    )
    drainWindowSeconds: DrainWindow = Field(
        300,
        description="Longest a terminating node waits for Swarm to restart its rescheduled containers elsewhere "
        'before it stops them; part of every scale-in and instance refresh (see "Draining nodes").',
    )
    rebalance: bool = Field(
        False,
        description=(
            "Move containers labelled `swarm-cluster.rebalance=true` from this role's fullest nodes onto its "
            'emptiest, e.g. after a scale-out (see "Rebalancing after scale-out"). Per role: on when any group '
            "of the role sets it."
        ),
    )

    @property
    def scale_in_protected(self) -> bool:
        return self.swarmManager if self.protectFromScaleIn is None else self.protectFromScaleIn

    @property
    def autoscaled(self) -> bool:
        return self.minSize != self.maxSize

    @property
    def reservation_target_percent(self) -> int:
        """With N nodes at reservation r, draining one leaves N-1 to hold N x r: r <= (N-1)/N."""
        if self.scaling.reservationTargetPercent is not None:
            return self.scaling.reservationTargetPercent
        nodes = max(self.minSize, 2)
        return 100 * (nodes - 1) // nodes


class Cluster(Strict):
    environment: EnvironmentName = Field(
        description="Environment name: the `docker.environment` label and the prefix of every AWS name."
    )
    highAvailability: bool = Field(
        description=(
            "Enforce high availability: at least 3 Consul servers and 3 managers, subnets in at least 3 zones, "
            "registry bucket protected from deletion. Must be `true` for `production`."
        )
    )


class StackConfig(Strict):
    """Everything under the `swarm-cluster:` namespace of one stack file, and the region."""

    region: Region = Field(
        description="AWS region of the stack; the program uses the provider's region, so they cannot differ."
    )
    cluster: Cluster = Field(description="The environment this stack runs.")
    network: Network = Field(description="The existing VPC the cluster runs in; nodes live in its private subnets.")
    dns: Dns = Field(description="Private Route53 zone for internal names (`consul.`, `docker.`, `swarm.`).")
    access: Access = Field(
        default_factory=Access,
        description="Who may reach the cluster's administrative ports. Empty lists mean nobody.",
    )
    rancheros: RancherOS = Field(description="The host operating system image and the encryption of its volumes.")
    swarm: Swarm = Field(default_factory=Swarm, description="The classic Swarm agent and manager.")
    consul: Consul = Field(
        default_factory=Consul, description="Consul servers: Swarm discovery and the overlay networks' store."
    )
    registry: Registry = Field(description="The private Docker registry (`docker.<zone>`), storing images in S3.")
    tagVariables: list[TagVariable] = Field(
        default_factory=list,
        description=(
            "Instance tags whose values every Swarm node carries as variables: in login shells and in "
            "/opt/swarm-cluster/environment, not in Swarm containers' environment (see 'Variables on a node')."
        ),
    )
    tags: dict[TagKey, TagValue] = Field(
        default_factory=dict,
        description=(
            "Tags put on every AWS resource and propagated to instances by the autoscaling groups (cost allocation, "
            'ownership); editing them replaces no instance (see "Cost tags never roll a group"). '
            "`Name`, `cluster.component` and `docker.*` keys are set by the program. These tags reach EC2 "
            "(instances, volumes, launch templates, security groups), Auto Scaling, IAM, ELBv2, S3 and Route53, so "
            "they follow the strictest of those services' rules: keys at most 127 characters (EC2) of the characters "
            "instance metadata can expose (instances make their tags readable there); values at most 256 letters, "
            "digits, spaces and `_ . : / = + - @` (the IAM, ELBv2 and S3 tag pattern); neither may start with `aws:`."
        ),
    )
    nodeGroups: list[NodeGroup] = Field(
        min_length=1, description="The Swarm node groups, one autoscaling group each; exactly one is the manager group."
    )


class Secrets(Strict):
    """Keys set with `pulumi config set --secret`: the stack file holds only their ciphertext."""

    consulGossipKey: GossipKey = Field(
        description=(
            "The Consul servers' gossip encryption key: "
            '`pulumi config set --secret swarm-cluster:consulGossipKey "$(openssl rand -base64 32)"` (or an '
            "`fn::secret` of an imported Pulumi ESC environment). Stored as the SSM SecureString "
            "`/swarm-cluster/<environment>/consul-gossip-key` (with `rancheros.kmsKeyArn` when set), which only the "
            "Consul servers' role may read, at boot; never in user-data. A wrong value is reported without being "
            "shown. Change it only as described in [Gossip encryption](#gossip-encryption)."
        )
    )
    registryHttpSecret: SecretText | None = Field(
        None,
        description=(
            "Shared `http.secret` of the registry replicas; required when `registry.replicas` > 1. Stored as the SSM "
            "SecureString `/swarm-cluster/<environment>/registry-http-secret`, which only the registry hosts' role may "
            "read, at boot; never in user-data. "
            'Set it encrypted: `pulumi config set --secret swarm-cluster:registryHttpSecret "$(openssl rand -hex 32)"` '
            "(a `secure:` value), or an `fn::secret` value under `pulumiConfig` of a Pulumi ESC environment the "
            "stack imports. A plain-text value is a config error, so a literal never reaches the state, the preview "
            "or a plan artifact; offline, the plan renders a placeholder in its place."
        ),
    )
