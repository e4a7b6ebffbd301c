"""The rebalancer's planner: classic Swarm's expression semantics, and properties of every plan."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node_agents.drain_signal import DRAINING_PREFIX, active_drains, draining_value
from node_agents.rebalance_plan import OPT_IN_LABEL, Container, Move, Node, Policy, balance_counts, plan
from node_agents.swarm_filters import (
    InvalidExpression,
    Neighbour,
    affinity_holds,
    constraint_holds,
    expressions,
    parse,
    whitelist_holds,
)

GIB = 1 << 30


# Cases from classicswarm v1.2.9 scheduler/filter/expr_test.go.
@pytest.mark.parametrize("raw", ["1node", "node ==node1", "no*de==node1", "no$de==node1", "node==", "n==x", "node"])
def test_swarm_refuses_the_same_expressions(raw: str) -> None:
    with pytest.raises(InvalidExpression):
        parse(raw)


@pytest.mark.parametrize(
    ("raw", "key", "value", "soft", "negated"),
    [
        ("NoDe==node1", "NoDe", "node1", False, False),
        ("_node==_node1", "_node", "_node1", False, False),
        ("node==*node*", "node", "*node*", False, False),
        ("node==/(?i)^[a-b]+c*(n|b)$/", "node", "/(?i)^[a-b]+c*(n|b)$/", False, False),
        ("node==node 1", "node", "node 1", False, False),
        ("docker.role!=~web", "docker.role", "web", True, True),
    ],
)
def test_parsing_matches_swarm(raw: str, key: str, value: str, soft: bool, negated: bool) -> None:
    expr = parse(raw)
    assert (expr.key, expr.value, expr.soft, expr.negated) == (key, value, soft, negated)


def test_matching_matches_swarm() -> None:
    assert parse("kk==foo").match(["foo", "bar"]) and not parse("kk==foo").match(["bar"])
    assert not parse("kk!=foo").match(["bar", "foo"]) and parse("kk!=foo").match(["bar"])
    assert parse("kk==f*o").match(["fuo"]) and not parse("kk!=f*o").match(["foo", "bar"])
    assert parse("kk==/^we+b$/").match(["weeb"]) and not parse("kk==/^we+b$/").match(["wb"])
    # Only * is special in a glob; the rest is a regular expression Swarm never escaped.
    assert parse("kk==a.c").match(["abc"])
    # A regular expression that does not compile matches nothing, so != holds.
    assert parse("kk!=/a(/").match(["a("]) and not parse("kk==/a(/").match(["a("])


def test_expressions_come_from_labels_and_env() -> None:
    labels = {"com.docker.swarm.constraints": json.dumps(["docker.role==web"])}
    found = expressions("constraint", labels, ("constraint:docker.tier!=~edge", "PATH=/bin", "affinity:x==y"))
    assert [str(e) for e in found] == ["docker.role==web", "docker.tier!=~edge"]
    assert expressions("constraint", {"com.docker.swarm.constraints": "not json"}, ()) == ()


def test_node_constraints_whitelists_and_affinities() -> None:
    labels = {"docker.role": "web"}
    assert constraint_holds(parse("node==ip-10-*"), "ID1", "ip-10-0-0-1", labels)
    assert constraint_holds(parse("node==ID1"), "ID1", "ip-10-0-0-1", labels)
    assert constraint_holds(parse("docker.tier!=edge"), "ID1", "n", labels)  # a missing label is ""
    assert whitelist_holds(parse("node==a|b"), "b") and not whitelist_holds(parse("node==a|b"), "c")
    web = Neighbour("c1", "web-1", {"app": "web"})
    assert affinity_holds(parse("container==web-*"), [web])
    assert not affinity_holds(parse("app!=web"), [web])
    assert affinity_holds(parse("app!=web"), [])
    assert not affinity_holds(parse("container==web-1"), [])


def test_drain_signal_ignores_stale_and_foreign_keys() -> None:
    entries = {
        f"{DRAINING_PREFIX}i-1": draining_value(200),
        f"{DRAINING_PREFIX}i-2": draining_value(50),
        f"{DRAINING_PREFIX}i-3": "garbage",
        "other/i-4": draining_value(999),
    }
    assert active_drains(entries, now=100) == ["i-1", "i-3"]


# ---------------------------------------------------------------- properties of plans

ROLES = ("web", "api")
SETTLED = 10_000.0
POLICY = Policy(roles=frozenset(ROLES), gap_threshold=1, max_moves=1, min_container_age=600, min_node_age=300)

node_names = [f"ip-10-0-0-{i}" for i in range(6)]
CONSTRAINTS = [
    "docker.tier==a",
    "docker.tier!=b",
    "docker.tier==~a",
    "node!=ip-10-0-0-1",
    "node==ip-10-0-0-2",
    "node==~ip-10-0-0-3",
    "docker.tier==/^[ab]$/",
    "docker.role==web",
]
AFFINITIES = ["container!=svc-1*", "app==x", "app!=~y", "app!=x", "container==svc-2"]


# Strategies are built once: building one per draw (`st.integers(0, 5)` inside the loop) cost more than the
# planning and checking they feed.
ROLE = st.sampled_from(ROLES[:1] * 3 + ROLES)
TIER = st.sampled_from("ab")
AGE = st.sampled_from([0.0] + [SETTLED] * 4)
ONE_IN_SIX = st.integers(0, 5)  # 0: unhealthy node, stopped or unscheduled container
NODE_COUNT, CPUS, MEMORY_GIB = st.integers(2, 5), st.integers(1, 4), st.integers(1, 8)
CONTAINER_COUNT = st.integers(0, 16)
APP = st.sampled_from("xyz")
OPTED_IN = st.integers(0, 4)  # 0: not opted in
CONSTRAINT_LISTS = st.lists(st.sampled_from(CONSTRAINTS), max_size=2, unique=True)
AFFINITY_LISTS = st.lists(st.sampled_from(AFFINITIES), max_size=1)
CONTAINER_CPUS = st.integers(0, 1)
CONTAINER_MEMORY = st.sampled_from([0, GIB // 2, GIB])
# 0.0.0.0:443 and 10.0.0.1:443 clash (Swarm's port filter: the same port with either side on every address).
HOST_PORTS = st.lists(st.sampled_from([("", "80"), ("10.0.0.1", "443"), ("0.0.0.0", "443")]), max_size=1)
# Where a container runs among `count` nodes: the first node as likely as all the others together.
PLACEMENT = {count: st.sampled_from(["ID0"] * count + [f"ID{i}" for i in range(count)]) for count in range(2, 6)}


@st.composite
def clusters(draw: st.DrawFn) -> tuple[list[Node], list[Container]]:
    count = draw(NODE_COUNT)
    nodes = [
        Node(
            id=f"ID{i}",
            name=node_names[i],
            labels={"docker.role": draw(ROLE), "docker.tier": draw(TIER)},
            age=draw(AGE),
            healthy=draw(ONE_IN_SIX) > 0,
            cpus=draw(CPUS),
            memory=draw(MEMORY_GIB) * GIB,
        )
        for i in range(count)
    ]
    containers = []
    for k in range(draw(CONTAINER_COUNT)):
        labels = {"app": draw(APP)}
        if draw(OPTED_IN) > 0:
            labels[OPT_IN_LABEL] = "true"
        constraints = draw(CONSTRAINT_LISTS) if k % 2 else []
        env = tuple(f"constraint:{c}" for c in constraints)
        env += tuple(f"affinity:{a}" for a in draw(AFFINITY_LISTS) if k % 3)
        containers.append(
            Container(
                id=f"c{k}",
                name=f"svc-{k}",
                node=draw(PLACEMENT[count]),
                labels=labels,
                env=env,
                age=draw(AGE),
                running=draw(ONE_IN_SIX) > 0,
                scheduled=draw(ONE_IN_SIX) > 0,
                cpus=draw(CONTAINER_CPUS),
                memory=draw(CONTAINER_MEMORY),
                host_ports=tuple(draw(HOST_PORTS)),
            )
        )
    return nodes, containers


def satisfied(nodes: list[Node], containers: list[Container]) -> set[tuple[str, str]]:
    """Every (container, expression) that holds where the container is now: the oracle, written once against
    the expression functions instead of the planner's move-by-move reasoning."""
    by_id = {n.id: n for n in nodes}
    held = set()
    for c in containers:
        node = by_id[c.node]
        for e in expressions("constraint", c.labels, c.env):
            if constraint_holds(e, node.id, node.name, node.labels):
                held.add((c.id, str(e)))
        neighbours = [o.neighbour() for o in containers if o.node == c.node and o.id != c.id]
        for e in expressions("affinity", c.labels, c.env):
            if affinity_holds(e, neighbours):
                held.add((c.id, f"affinity {e}"))
    return held


def apply(containers: list[Container], move: Move) -> list[Container]:
    moved = replace(move.container, node=move.target.id, age=0.0)
    return [moved if c.id == moved.id else c for c in containers]


def check_move(nodes: list[Node], before: list[Container], move: Move) -> list[Container]:
    c, target = move.container, move.target
    assert c.labels.get(OPT_IN_LABEL) == "true" and c.age >= POLICY.min_container_age and c.running
    assert target.healthy and target.age >= POLICY.min_node_age and target.role == move.source.role
    after = apply(before, move)
    held_before, held_after = satisfied(nodes, before), satisfied(nodes, after)
    lost = {(cid, e) for cid, e in held_before - held_after if not (cid == c.id and e.startswith("node==~"))}
    assert not lost, f"{move.container.name} -> {target.name} broke {lost}"
    for e in expressions("constraint", c.labels, c.env):
        assert e.soft or constraint_holds(e, target.id, target.name, target.labels)
    present = [o for o in after if o.node == target.id]
    assert c.cpus == 0 or sum(o.cpus for o in present) <= target.cpus
    assert c.memory == 0 or sum(o.memory for o in present) <= target.memory
    taken = [p for o in present if o.id != c.id for p in o.host_ports]
    everywhere = ("", "0.0.0.0")
    assert not any(w[1] == t[1] and (w[0] == t[0] or {w[0], t[0]} & {*everywhere}) for w in c.host_ports for t in taken)
    counts_before = balance_counts(nodes, before, POLICY)
    counts_after = balance_counts(nodes, after, POLICY)
    assert counts_before[move.source.id] - counts_before[target.id] > POLICY.gap_threshold
    role = [n.id for n in nodes if n.role == target.role and n.id in counts_before]
    assert sum(counts_after[i] ** 2 for i in role) < sum(counts_before[i] ** 2 for i in role)
    spread = lambda counts: max(counts[i] for i in role) - min(counts[i] for i in role)  # noqa: E731
    assert spread(counts_after) <= spread(counts_before)
    return after


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(clusters())
def test_every_move_is_legal_narrows_the_gap_and_the_plan_converges(
    cluster: tuple[list[Node], list[Container]],
) -> None:
    nodes, containers = cluster
    bound = sum(v**2 for v in balance_counts(nodes, containers, POLICY).values()) + 1
    for _ in range(bound):
        result = plan(nodes, containers, POLICY)
        if not result.moves:
            break
        (move,) = result.moves
        containers = check_move(nodes, containers, move)
    else:
        pytest.fail("the plan did not converge")


@settings(max_examples=100, deadline=None)
@given(clusters(), st.integers(2, 5))
def test_a_multi_move_plan_is_the_sequence_of_single_moves(
    cluster: tuple[list[Node], list[Container]], budget: int
) -> None:
    nodes, containers = cluster
    moves = plan(nodes, containers, replace(POLICY, max_moves=budget)).moves
    assert len(moves) <= budget
    for move in moves:
        (single,) = plan(nodes, containers, POLICY).moves
        assert single == move
        containers = check_move(nodes, containers, move)


@settings(max_examples=100, deadline=None)
@given(clusters())
def test_nothing_moves_while_a_node_drains(cluster: tuple[list[Node], list[Container]]) -> None:
    result = plan(*cluster, POLICY, draining=["i-0abc"])
    assert result.moves == () and result.paused and "i-0abc" in result.paused


def web_node(i: int, **changes: object) -> Node:
    base = Node(id=f"ID{i}", name=node_names[i], labels={"docker.role": "web"}, age=SETTLED, cpus=2, memory=4 * GIB)
    return replace(base, **changes)  # type: ignore[arg-type]


def web_container(k: int, node: int, **changes: object) -> Container:
    base = Container(id=f"c{k}", name=f"web-{k}", node=f"ID{node}", labels={OPT_IN_LABEL: "true"}, age=SETTLED)
    return replace(base, **changes)  # type: ignore[arg-type]


def test_a_new_node_receives_containers_until_the_gap_closes() -> None:
    nodes = [web_node(0), web_node(1), web_node(2)]
    containers = [web_container(k, k % 2) for k in range(6)]
    moves = plan(nodes, containers, replace(POLICY, max_moves=5)).moves
    assert [(m.container.name, m.target.id) for m in moves] == [("web-1", "ID2"), ("web-0", "ID2")]


def test_young_nodes_and_containers_and_other_roles_wait() -> None:
    nodes = [web_node(0), web_node(1, age=10.0)]
    containers = [web_container(k, 0) for k in range(4)]
    assert plan(nodes, containers, POLICY).moves == ()
    nodes[1] = web_node(1)
    assert plan(nodes, [replace(c, age=5.0) for c in containers], POLICY).moves == ()
    assert plan(nodes, containers, replace(POLICY, roles=frozenset({"api"}))).moves == ()
    assert len(plan(nodes, containers, POLICY).moves) == 1


def test_linked_containers_and_fixed_ones_stay() -> None:
    nodes = [web_node(0), web_node(1)]
    containers = [
        web_container(0, 0, depends_on=("web-1",)),
        web_container(1, 0),
        web_container(2, 0, fixed="uses the host's network"),
    ]
    assert plan(nodes, containers, POLICY).moves == ()


def test_resources_and_ports_keep_a_container_where_it_is() -> None:
    nodes = [web_node(0), web_node(1, cpus=1)]
    heavy = [web_container(k, 0, cpus=1) for k in range(4)]
    assert [m.container.name for m in plan(nodes, heavy, replace(POLICY, max_moves=3)).moves] == ["web-0"]
    ported = [web_container(k, 0, host_ports=(("", "80"),)) for k in range(3)]
    ported.append(web_container(9, 1, host_ports=(("0.0.0.0", "80"),), labels={}))
    assert plan(nodes, ported, POLICY).moves == ()
