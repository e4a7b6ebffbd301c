"""Which opted-in containers to move so that the nodes of one role carry similar numbers of containers.

Pure: no I/O, no clock. The executor (`rebalance.py`) describes the cluster as it sees it through the Swarm
API and carries out the moves one at a time, planning again after each one.

A move is legal when Swarm itself would place the copy on the target (constraints, whitelists, affinities,
host ports, container slots, reserved CPU and memory, as `scheduler/filter/*.go` and
`scheduler/strategy/weighted_node.go` of classic Swarm 1.2.9 decide) and when it leaves every expression
that held before, soft (`~`) ones included, still holding for the moved container and its old and new
neighbours. Soft `node` constraints are the exception: Swarm adds `node==~<engine>` itself and the rebalancer
pins its copies with one, so they say where a container was put, not where it must stay.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace

from node_agents.swarm_filters import (
    Expr,
    InvalidExpression,
    Neighbour,
    affinity_holds,
    constraint_holds,
    expressions,
    whitelist_holds,
)

OPT_IN_LABEL = "swarm-cluster.rebalance"
OPT_IN_VALUE = "true"
ROLE_LABEL = "docker.role"


@dataclass(frozen=True)
class Node:
    id: str
    name: str
    labels: Mapping[str, str]  # engine labels as Swarm reports them, `docker.role` among them
    age: float  # seconds since the rebalancer first saw it healthy
    healthy: bool = True
    cpus: int = 0  # what Swarm may reserve: NCPU and MemTotal plus its overcommit
    memory: int = 0

    @property
    def role(self) -> str:
        return self.labels.get(ROLE_LABEL, "")


@dataclass(frozen=True)
class Container:
    id: str
    name: str
    node: str  # Node.id
    labels: Mapping[str, str] = field(default_factory=dict)
    env: tuple[str, ...] = ()
    age: float = 0.0  # seconds since it started
    running: bool = True
    scheduled: bool = True  # created through Swarm (carries com.docker.swarm.id): what the balance counts
    cpus: int = 0  # HostConfig.CpuShares, which classic Swarm reserves as whole CPUs
    memory: int = 0  # HostConfig.Memory in bytes
    host_ports: tuple[tuple[str, str], ...] = ()  # (host IP, host port) of every published binding
    depends_on: tuple[str, ...] = ()  # names from --link, --volumes-from, --net=container:
    fixed: str | None = None  # why the executor will not move it, whatever the plan says

    @property
    def opted_in(self) -> bool:
        return self.labels.get(OPT_IN_LABEL) == OPT_IN_VALUE

    def neighbour(self) -> Neighbour:
        return Neighbour(self.id, self.name, self.labels)


@dataclass(frozen=True)
class Policy:
    roles: frozenset[str]
    gap_threshold: int = 1  # act when the fullest and the emptiest node differ by more than this
    max_moves: int = 1
    min_container_age: float = 600.0
    min_node_age: float = 300.0


@dataclass(frozen=True)
class Move:
    container: Container
    source: Node
    target: Node


@dataclass(frozen=True)
class Plan:
    moves: tuple[Move, ...]
    paused: str | None = None  # why nothing was planned at all


def plan(nodes: Iterable[Node], containers: Iterable[Container], policy: Policy, draining: Iterable[str] = ()) -> Plan:
    """Up to `policy.max_moves` moves, each planned on the cluster as the previous ones leave it."""
    drains = sorted(draining)
    if drains:
        return Plan((), f"paused: {', '.join(drains)} draining")
    state = _State({n.id: n for n in nodes}, list(containers))
    moves: list[Move] = []
    while len(moves) < policy.max_moves:
        move = next(iter(_candidates(state, policy)), None)
        if move is None:
            break
        moves.append(move)
        state = state.apply(move)
    return Plan(tuple(moves))


def balance_counts(nodes: Iterable[Node], containers: Iterable[Container], policy: Policy) -> dict[str, int]:
    """Running scheduled containers per settled node of the enabled roles: the numbers the plan evens out."""
    counted = [n for n in nodes if _settled(n, policy) and n.role in policy.roles]
    return {n.id: sum(1 for c in containers if c.node == n.id and _counts(c)) for n in counted}


def _counts(c: Container) -> bool:
    return c.running and c.scheduled


def _settled(n: Node, policy: Policy) -> bool:
    return n.healthy and n.age >= policy.min_node_age


@dataclass(frozen=True)
class _State:
    nodes: Mapping[str, Node]
    containers: list[Container]

    def on(self, node_id: str, excluding: str | None = None) -> list[Container]:
        return [c for c in self.containers if c.node == node_id and c.id != excluding]

    def apply(self, move: Move) -> _State:
        moved = replace(move.container, node=move.target.id, age=0.0)
        return _State(self.nodes, [moved if c.id == moved.id else c for c in self.containers])


def _candidates(state: _State, policy: Policy) -> Iterator[Move]:
    """Fullest source first, emptiest target first, containers by name: the first legal move narrows the
    widest gap it can."""
    for role in sorted(policy.roles):
        counts = balance_counts([n for n in state.nodes.values() if n.role == role], state.containers, policy)
        by_count = sorted(counts, key=lambda i: (counts[i], state.nodes[i].name))
        for source_id in reversed(by_count):
            for target_id in by_count:
                if counts[source_id] - counts[target_id] <= policy.gap_threshold:
                    break
                source, target = state.nodes[source_id], state.nodes[target_id]
                for container in sorted(state.on(source_id), key=lambda c: c.name):
                    if _movable(container, state, policy) and _legal(container, source, target, state):
                        yield Move(container, source, target)


def _movable(c: Container, state: _State, policy: Policy) -> bool:
    if not (c.opted_in and _counts(c) and c.fixed is None and not c.depends_on):
        return False
    if c.age < policy.min_container_age:
        return False
    # Swarm's dependency filter keeps linked and volume-sharing containers together: leave both where they are.
    return not any(c.name in other.depends_on for other in state.containers)


def _legal(c: Container, source: Node, target: Node, state: _State) -> bool:
    try:
        constraints = expressions("constraint", c.labels, c.env)
        whitelists = expressions("whitelist", c.labels, c.env)
        affinities = expressions("affinity", c.labels, c.env)
    except InvalidExpression:
        return False
    if any(a.key == "image" for a in affinities) or not _fits(c, target, state):
        return False
    for e in constraints:
        if e.soft and e.key == "node":
            continue
        before = constraint_holds(e, source.id, source.name, source.labels)
        after = constraint_holds(e, target.id, target.name, target.labels)
        if not after and (before or not e.soft):
            return False
    for e in whitelists:
        if not whitelist_holds(e, target.name) and (whitelist_holds(e, source.name) or not e.soft):
            return False
    old = [n.neighbour() for n in state.on(source.id, excluding=c.id)]
    new = [n.neighbour() for n in state.on(target.id)]
    for e in affinities:
        if not affinity_holds(e, new) and (affinity_holds(e, old) or not e.soft):
            return False
    return _neighbours_keep_affinities(c, source, target, state)


def _neighbours_keep_affinities(c: Container, source: Node, target: Node, state: _State) -> bool:
    """An affinity another container was placed by (it is evaluated without that container itself) must not
    stop holding because `c` left its node or arrived beside it."""
    for node, arriving in ((source, False), (target, True)):
        for other in state.on(node.id, excluding=c.id):
            others = [n.neighbour() for n in state.on(node.id, excluding=c.id) if n.id != other.id]
            after = [*others, c.neighbour()] if arriving else others
            before = others if arriving else [*others, c.neighbour()]
            for e in _affinities_or_none(other):
                # The copy pulls its image onto the target, which can only break an image affinity there.
                if e.key == "image":
                    if arriving:
                        return False
                elif affinity_holds(e, before) and not affinity_holds(e, after):
                    return False
    return True


def _affinities_or_none(c: Container) -> tuple[Expr, ...]:
    try:
        return expressions("affinity", c.labels, c.env)
    except InvalidExpression:
        return ()


def _fits(c: Container, target: Node, state: _State) -> bool:
    present = state.on(target.id)
    slots = target.labels.get("containerslots", "")
    if slots.isdigit() and len(present) >= int(slots):
        return False
    if c.cpus > 0 and sum(p.cpus for p in present) + c.cpus > target.cpus:
        return False
    if c.memory > 0 and sum(p.memory for p in present) + c.memory > target.memory:
        return False
    return not any(_port_clash(wanted, taken) for p in present for taken in p.host_ports for wanted in c.host_ports)


def _port_clash(wanted: tuple[str, str], taken: tuple[str, str]) -> bool:
    """port.go compare: the same host port on the same address, or either side on every address."""
    (ip_a, port_a), (ip_b, port_b) = wanted, taken
    return port_a == port_b and (ip_a == ip_b or ip_a in ("", "0.0.0.0", "::") or ip_b in ("", "0.0.0.0", "::"))
