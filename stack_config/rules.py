"""Rules that span several keys. Each runs as soon as the keys it reads have passed their own
validation, so one run reports every problem it can find, even while other keys are broken."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass

from stack_config.models import Access, Cluster, Consul, Network, NodeGroup, RancherOS, Registry, TagVariable
from stack_config.quoting import quoted

Problem = tuple[str, str]  # (key path inside the namespace, what is wrong and what is allowed)

AWS_TAG_LIMIT = 50
# Tags every group carries besides the configured ones: Name, docker.environment, docker.role, cluster.component.
RESERVED_TAG_KEYS = ("Name", "docker.environment", "docker.role", "cluster.component")
# Ports no config may open to the whole internet: SSH, Docker API, Swarm, overlay, registry, Consul.
CLUSTER_PORTS = frozenset((22, 2375, 2376, 4000, 4789, 5000, 7946, 8300, 8301, 8302, 8500))
HA_MINIMUM = 3
# Hostnames are <environment>-<group>-<instance id (19)> and may have at most 63 characters.
HOSTNAME_BUDGET = 63 - len("--i-0123456789abcdef0")
# Names the cluster services use for their AWS resources (security groups, load balancers, roles).
RESERVED_GROUP_PREFIXES = ("cluster", "nodes", "consul", "registry", "swarm")


@dataclass(frozen=True)
class Sections:
    """The namespace's keys that are valid on their own; None where a key is missing or invalid."""

    region: str | None
    cluster: Cluster | None
    network: Network | None
    access: Access | None
    consul: Consul | None
    rancheros: RancherOS | None
    registry: Registry | None
    tagVariables: list[TagVariable] | None
    tags: dict[str, str] | None
    nodeGroups: list[NodeGroup] | None


def problems(config: Sections, *, has_registry_secret: bool) -> list[Problem]:
    return [
        *_network(config),
        *_access(config),
        *_availability(config),
        *_node_groups(config),
        *_tags(config),
        *_registry(config, has_registry_secret),
    ]


def _network(config: Sections) -> Iterator[Problem]:
    if config.network is None:
        return
    vpc = ipaddress.ip_network(config.network.vpcCidr)
    for i, subnet in enumerate(config.network.subnets):
        cidr = ipaddress.ip_network(subnet.cidr)
        if cidr.version != vpc.version or not cidr.subnet_of(vpc):  # type: ignore[arg-type]
            yield (
                f"network.subnets[{i}].cidr",
                f"{subnet.cidr} is not inside vpcCidr {config.network.vpcCidr}; subnets must lie inside the VPC",
            )
    yield from duplicates("network.subnets[{}].id", [s.id for s in config.network.subnets])
    # Load balancers take one subnet per availability zone; a second one in a zone is rejected by AWS.
    yield from duplicates("network.subnets[{}].availabilityZone", [s.availabilityZone for s in config.network.subnets])


def _access(config: Sections) -> Iterator[Problem]:
    if config.access is None:
        return
    for field in ("adminCidrs", "sshCidrs"):
        for i, cidr in enumerate(getattr(config.access, field)):
            if ipaddress.ip_network(cidr).prefixlen == 0:
                yield f"access.{field}[{i}]", f"{cidr} is the whole internet; list your VPN or office ranges"


def _availability(config: Sections) -> Iterator[Problem]:
    consul, cluster, network = config.consul, config.cluster, config.network
    if consul is not None and consul.serverCount % 2 == 0:
        yield "consul.serverCount", f"{consul.serverCount} is even; use an odd count (1, 3, 5, 7) so a quorum exists"
    if cluster is None or not cluster.highAvailability:
        if cluster is not None and cluster.environment == "production":
            yield "cluster.highAvailability", "production must be highly available; set it to true"
        return
    if consul is not None and consul.serverCount < HA_MINIMUM:
        yield "consul.serverCount", f"{consul.serverCount} servers is not highly available; use at least {HA_MINIMUM}"
    zones = network.availability_zones if network is not None else set(range(HA_MINIMUM))
    if len(zones) < HA_MINIMUM:
        yield (
            "network.subnets",
            (
                f"the subnets span {len(zones)} availability zone(s); "
                f"a highly available cluster needs at least {HA_MINIMUM}"
            ),
        )


def _node_groups(config: Sections) -> Iterator[Problem]:
    groups = config.nodeGroups
    if groups is None:
        return
    yield from duplicates("nodeGroups[{}].name", [g.name for g in groups])
    if not any(g.swarmManager for g in groups):
        yield "nodeGroups", "no group has swarmManager: true; the cluster needs exactly one Swarm manager group"
    managers = [i for i, g in enumerate(groups) if g.swarmManager]
    for i in managers[1:]:
        yield (
            f"nodeGroups[{i}].swarmManager",
            f"only one Swarm manager group is allowed; nodeGroups[{managers[0]}] is one",
        )
    for i, group in enumerate(groups):
        path = f"nodeGroups[{i}]"
        if config.cluster is not None and len(config.cluster.environment) + len(group.name) > HOSTNAME_BUDGET:
            yield (
                f"{path}.name",
                (
                    f"{group.name!r} with environment {config.cluster.environment!r} makes node hostnames longer than "
                    f"63 characters; keep the two names under {HOSTNAME_BUDGET + 1} characters together"
                ),
            )
        if group.name.startswith(RESERVED_GROUP_PREFIXES):
            yield (
                f"{path}.name",
                (
                    f"{group.name!r} would clash with the cluster services' AWS names; "
                    f"choose a name not starting with {', '.join(RESERVED_GROUP_PREFIXES)}"
                ),
            )
        if not group.minSize <= group.desiredCapacity <= group.maxSize:
            yield (
                f"{path}.desiredCapacity",
                (
                    f"{group.desiredCapacity} is outside minSize {group.minSize} .. maxSize {group.maxSize}; "
                    "sizes must satisfy minSize <= desiredCapacity <= maxSize"
                ),
            )
        if group.swarmManager:
            yield from _manager_size(config, path, group.minSize, group.desiredCapacity, group.maxSize)
        for j, ingress in enumerate(group.ingress):
            for k, cidr in enumerate(ingress.cidrs):
                if ingress.port in CLUSTER_PORTS and ipaddress.ip_network(cidr).prefixlen == 0:
                    yield (
                        f"{path}.ingress[{j}].cidrs[{k}]",
                        (f"port {ingress.port} is a cluster port and may not be opened to {cidr}; list private ranges"),
                    )


def _manager_size(config: Sections, path: str, low: int, desired: int, high: int) -> Iterator[Problem]:
    if not low == desired == high:
        yield f"{path}.maxSize", "a swarmManager group has a fixed size; set minSize = desiredCapacity = maxSize"
    if desired % 2 == 0:
        yield f"{path}.desiredCapacity", f"{desired} is even; a swarmManager group needs an odd size (1, 3, 5)"
    if config.cluster is not None and config.cluster.highAvailability and desired < HA_MINIMUM:
        yield f"{path}.desiredCapacity", f"{desired} manager(s) is not highly available; use at least {HA_MINIMUM}"


def _tags(config: Sections) -> Iterator[Problem]:
    tags, variables = config.tags, config.tagVariables
    if tags is None or variables is None:
        return
    yield from duplicates("tagVariables[{}].tag", [t.tag for t in variables])
    yield from duplicates("tagVariables[{}].variable", [t.variable for t in variables])
    owned = set(RESERVED_TAG_KEYS)
    for key in tags:
        if key in owned or key.startswith("docker."):
            yield f"tags.{key}", "this key is set by the program; remove it"
    for i, variable in enumerate(variables):
        if variable.tag in owned or variable.tag.startswith("docker.") or variable.tag in tags:
            yield f"tagVariables[{i}].tag", f"{variable.tag!r} is already used by another tag; choose a unique key"
    shared = len(RESERVED_TAG_KEYS) + len(tags) + len(variables)
    for i, group in enumerate(config.nodeGroups or []):
        if shared + len(group.labels) > AWS_TAG_LIMIT:
            yield (
                f"nodeGroups[{i}].labels",
                (
                    f"the group would carry {shared + len(group.labels)} tags (labels, tags, tagVariables and "
                    f"{len(RESERVED_TAG_KEYS)} of the program's own); AWS allows at most {AWS_TAG_LIMIT}"
                ),
            )


def _registry(config: Sections, has_secret: bool) -> Iterator[Problem]:
    if config.registry is not None and config.registry.replicas > 1 and not has_secret:
        yield (
            "registry.replicas",
            (
                f"{config.registry.replicas} replicas need a shared secret; run "
                "`pulumi config set --secret swarm-cluster:registryHttpSecret <random>` or use 1 replica"
            ),
        )


def duplicates(path: str, values: list[str], fix: str = "each must be unique") -> Iterator[Problem]:
    """A problem at each repetition of a value (`path` has `{}` for the index)."""
    seen: set[str] = set()
    for i, value in enumerate(values):
        if value in seen:
            yield path.format(i), f"{quoted(value)} is used more than once; {fix}"
        seen.add(value)
