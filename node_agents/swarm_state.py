"""The cluster as a classic Swarm 1.2.9 manager reports it, in the planner's terms.

`/info` is answered by every manager itself (api/replica.go `localRoutes`), so its SystemStatus says whether
this manager is the primary (`Role: primary`, cli/manage.go statusHandler; a manager without --replication
says primary too) and lists every engine it knows with its status, reservations and labels
(cluster/swarm/cluster.go Info). Containers come from the primary's `/containers/json?all=1` and one
inspect each (HostConfig carries the reservations and dependencies, `Node` the engine).
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from node_agents.docker import SWARM_ID_LABEL, Docker, SwarmInfo
from node_agents.http import HttpStatusError
from node_agents.rebalance_plan import Container, Node

# Swarm prints "Reserved Memory" with four significant digits: count a node 0.05 % smaller than it reads.
_PRINT_PRECISION = 0.0005
_SHARED_NETWORK_SCOPES = ("global", "swarm")
_ANY_HOST_NETWORK = ("default", "bridge", "none", "")


def nodes(info: SwarmInfo, first_seen: MutableMapping[str, float], now: float) -> list[Node]:
    """The engines of /info. `first_seen` (engine id -> when first seen healthy) is the caller's memory of
    node ages: Swarm does not report when an engine joined."""
    found = []
    for engine in info.nodes:
        healthy = engine.status == "Healthy" and bool(engine.id)
        if healthy:
            first_seen.setdefault(engine.id, now)
        found.append(
            Node(
                id=engine.id or engine.name,
                name=engine.name,
                labels=engine.labels,
                age=now - first_seen.get(engine.id, now),
                healthy=healthy,
                cpus=engine.reserved_cpus[1],
                memory=int(engine.reserved_memory[1] * (1 - _PRINT_PRECISION)),
            )
        )
    return found


def _started(state: Mapping[str, Any], now: float) -> float:
    try:
        return now - datetime.fromisoformat(str(state.get("StartedAt", ""))).timestamp()
    except ValueError:
        return 0.0


def _fixed(inspected: Mapping[str, Any], shared_networks: set[str]) -> str | None:
    host = inspected.get("HostConfig") or {}
    mode = str(host.get("NetworkMode") or "")
    attached = (inspected.get("NetworkSettings") or {}).get("Networks") or {}
    if mode == "host" or mode.startswith("container:"):
        return f"network mode {mode}"
    if mode not in _ANY_HOST_NETWORK and mode not in shared_networks:
        return f"network {mode} exists on its node only"
    if len(attached) > 1:
        return "attached to several networks (Swarm creates a container on one)"
    if any((a.get("IPAMConfig") or {}).get("IPv4Address") for a in attached.values()):
        return "a fixed IP address its copy could not take while it runs"
    return None


def _dependencies(host: Mapping[str, Any]) -> tuple[str, ...]:
    """dependency.go: --volumes-from, --link and --net=container: name containers that must share the node."""
    names = [v.split(":", 1)[0] for v in host.get("VolumesFrom") or []]
    names += [link.split(":", 1)[0].lstrip("/") for link in host.get("Links") or []]
    mode = str(host.get("NetworkMode") or "")
    if mode.startswith("container:"):
        names.append(mode.removeprefix("container:"))
    return tuple(names)


def container(inspected: Mapping[str, Any], shared_networks: set[str], now: float) -> Container:
    config, host = inspected.get("Config") or {}, inspected.get("HostConfig") or {}
    state = inspected.get("State") or {}
    labels = {str(k): str(v) for k, v in (config.get("Labels") or {}).items()}
    ports = tuple(
        (str(b.get("HostIp") or ""), str(b.get("HostPort") or ""))
        for bindings in (host.get("PortBindings") or {}).values()
        for b in bindings or []
        if b.get("HostPort")
    )
    return Container(
        id=str(inspected["Id"]),
        name=str(inspected.get("Name", "")).lstrip("/"),
        node=str((inspected.get("Node") or {}).get("ID", "")),
        labels=labels,
        env=tuple(config.get("Env") or ()),
        age=_started(state, now) if state.get("Running") else 0.0,
        running=bool(state.get("Running")),
        scheduled=SWARM_ID_LABEL in labels,
        cpus=int(host.get("CpuShares") or 0),
        memory=int(host.get("Memory") or 0),
        host_ports=ports,
        depends_on=_dependencies(host),
        fixed=_fixed(inspected, shared_networks),
    )


@dataclass(frozen=True)
class Snapshot:
    primary: bool
    nodes: list[Node]
    containers: list[Container]
    inspected: dict[str, dict[str, Any]]  # container id -> its inspect document, for cloning


def read(swarm: Docker, first_seen: MutableMapping[str, float], now: float) -> Snapshot:
    """One look at the cluster through the manager `swarm` talks to; containers only on the primary."""
    info = swarm.swarm_info()
    found = nodes(info, first_seen, now)
    if info.role != "primary":
        return Snapshot(False, found, [], {})
    shared = {str(n.get("Name")) for n in swarm.networks() if n.get("Scope") in _SHARED_NETWORK_SCOPES}
    inspected = {}
    for listed in swarm.containers(all=True):
        try:
            document = swarm.inspect(str(listed["Id"]))
        except HttpStatusError:
            continue  # on an engine Swarm cannot reach (inspect answers 500): not placeable either way
        if document is not None:  # None: removed since the listing
            inspected[str(listed["Id"])] = document
    return Snapshot(True, found, [container(i, shared, now) for i in inspected.values()], inspected)
