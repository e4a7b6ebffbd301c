"""The primary-manager agent, executed as a real process against FakeDocker (classic Swarm), FakeConsul and
FakeAws: rebalancing with constraints, churn caps, replicas, failed copies, drains, interrupted moves, and
the capacity metric it publishes."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from node_agents.drain_signal import DRAINING_PREFIX, draining_value
from tests.fakes.agent_process import AgentProcess, agent_env
from tests.fakes.aws import FakeAws
from tests.fakes.consul import FakeConsul
from tests.fakes.docker import GIB, FakeDocker, FakeNode

PROJECT_ROOT = Path(__file__).resolve().parent.parent
OPT_IN = {"swarm-cluster.rebalance": "true"}
# Agent seconds pass 1000 times faster: a 60 s round takes 60 ms. The agent counts its waits for a copy
# in polls, not by the clock, so the real cost of each poll does not stretch them.
TIME_SCALE = "0.001"
REBALANCE = {
    "roles": ["web"],
    "intervalSeconds": 60,
    "gapThreshold": 1,
    "maxMovesPerInterval": 5,
    "minContainerAgeSeconds": 0,
    "minNodeAgeSeconds": 0,
    "healthTimeoutSeconds": 30,
}


def web_nodes() -> list[FakeNode]:
    return [
        FakeNode("web-1", "10.30.1.10:2375", labels={"docker.role": "web", "docker.tier": "a"}),
        FakeNode("web-2", "10.30.1.11:2375", labels={"docker.role": "web", "docker.tier": "b"}),
        FakeNode("web-3", "10.30.1.12:2375", labels={"docker.role": "web", "docker.tier": "a"}),
    ]


@contextmanager
def agent(swarm: FakeDocker, consul: FakeConsul, aws: FakeAws, **rebalance: Any) -> Iterator[AgentProcess]:
    settings = {
        "environment": "staging",
        "groups": [{"name": "web", "role": "web", "targetPercent": 50}],
        "rebalance": {**REBALANCE, **rebalance},
    }
    env = agent_env(
        aws=aws,
        PRIMARY_AGENT_SETTINGS=json.dumps(settings),
        SWARM_HOST=swarm.docker_host,
        CONSUL_HTTP_ADDR=consul.url,
        AGENT_TIME_SCALE=TIME_SCALE,
    )
    with AgentProcess("primary", [], env) as process:
        yield process


def rounds(aws: FakeAws, count: int) -> None:
    """Let the agent finish `count` more cycles: each publishes the metric once."""
    start = len(aws.calls_of("PutMetricData"))
    aws.wait_until(lambda: len(aws.calls_of("PutMetricData")) >= start + count)


def position(swarm: FakeDocker, method: str, path: str) -> int:
    return next(i for i, r in enumerate(swarm.requests) if r.method == method and r.path.endswith(path))


def where(swarm: FakeDocker) -> dict[str, str]:
    with swarm.lock:
        return {c.name: c.node for c in swarm.containers.values()}


def test_moves_opted_in_containers_onto_the_new_node_within_their_constraints() -> None:
    with FakeDocker(web_nodes()) as swarm, FakeConsul() as consul, FakeAws() as aws:
        tier_a = {"com.docker.swarm.constraints": json.dumps(["docker.tier==a"])}
        swarm.add_container("a1", node="web-1", labels={**OPT_IN, **tier_a})
        swarm.add_container("a2", node="web-1", labels={**OPT_IN, **tier_a})
        swarm.add_container(
            "pinned", node="web-1", labels={**OPT_IN, "com.docker.swarm.constraints": '["node==web-1"]'}
        )
        swarm.add_container("stays", node="web-1")
        swarm.add_container("b1", node="web-2")
        swarm.add_container("b2", node="web-2")
        originals = {name: swarm.container(name).id for name in ("a1", "a2")}
        with agent(swarm, consul, aws) as run:
            rounds(aws, 3)
            log = run.output()
        assert where(swarm) == {
            "a1": "web-3",
            "a2": "web-3",
            "pinned": "web-1",
            "stays": "web-1",
            "b1": "web-2",
            "b2": "web-2",
        }
        assert set(swarm.removed) == set(originals.values()), log
        for name, original in originals.items():
            copy = swarm.container(name)
            assert copy.id != original and copy.running
            assert copy.labels["com.docker.swarm.id"] != original[-32:]
            assert json.loads(copy.labels["com.docker.swarm.constraints"]) == ["docker.tier==a", "node==~ID-WEB-3"]
            # Clone, then stop: the copy ran before the original was stopped.
            assert position(swarm, "POST", f"/containers/{copy.id}/start") < position(
                swarm, "POST", f"/containers/{original}/stop"
            )
        assert "moved a1 web-1 -> web-3" in log and "moved a2 web-1 -> web-3" in log, log
        assert "cycle failed" not in log, log


def test_at_most_max_moves_per_interval() -> None:
    with FakeDocker(web_nodes()[:2]) as swarm, FakeConsul() as consul, FakeAws() as aws:
        for k in range(6):
            swarm.add_container(f"app-{k}", node="web-1", labels=dict(OPT_IN))
        with agent(swarm, consul, aws, maxMovesPerInterval=2, intervalSeconds=86400):
            rounds(aws, 4)
        assert sorted(where(swarm).values()) == ["web-1"] * 4 + ["web-2"] * 2
        assert len(swarm.created) == 2


def test_young_containers_stay() -> None:
    with FakeDocker(web_nodes()[:2]) as swarm, FakeConsul() as consul, FakeAws() as aws:
        for k in range(4):
            swarm.add_container(f"app-{k}", node="web-1", labels=dict(OPT_IN))
        with agent(swarm, consul, aws, minContainerAgeSeconds=3600):
            rounds(aws, 3)
        assert swarm.created == []


def test_a_replica_does_nothing() -> None:
    with FakeDocker(web_nodes(), role="replica", primary="10.30.0.5:4000") as swarm:
        with FakeConsul() as consul, FakeAws() as aws:
            for k in range(4):
                swarm.add_container(f"app-{k}", node="web-1", labels=dict(OPT_IN))
            with agent(swarm, consul, aws) as run:
                swarm.wait_until(lambda: sum(r.path.endswith("/info") for r in swarm.requests) >= 3)
                log = run.output()
        assert "replica: idle" in log
        assert [r.path for r in swarm.requests if not r.path.endswith("/info")] == []
        assert aws.calls == []


def test_a_copy_that_never_turns_healthy_is_removed_and_the_original_kept() -> None:
    with FakeDocker(web_nodes()[:2], auto_healthy=False) as swarm, FakeConsul() as consul, FakeAws() as aws:
        checked = {"Healthcheck": {"Test": ["CMD", "true"]}}
        swarm.add_container("app-0", node="web-1", labels=dict(OPT_IN), config=dict(checked), health="healthy")
        swarm.add_container("app-1", node="web-1")
        swarm.add_container("app-2", node="web-1")
        originals = {c.name: c.id for c in swarm.containers.values()}
        with agent(swarm, consul, aws, intervalSeconds=30) as run:
            rounds(aws, 4)
            log = run.output()
        assert {c.name: c.id for c in swarm.containers.values()} == originals
        assert all(swarm.container(name).running for name in originals)
        assert len(swarm.created) == 1 and swarm.removed == swarm.created  # tried once, not every round
        assert "move app-0 web-1 -> web-2 abandoned, original kept: the copy was not healthy within 30s" in log


def test_nothing_moves_while_a_node_drains() -> None:
    with FakeDocker(web_nodes()[:2]) as swarm, FakeConsul() as consul, FakeAws() as aws:
        for k in range(4):
            swarm.add_container(f"app-{k}", node="web-1", labels=dict(OPT_IN))
        consul.kv[f"{DRAINING_PREFIX}i-0123456789abcdef0"] = draining_value(time.time() + 3600).encode()
        consul.kv[f"{DRAINING_PREFIX}i-0fedcba987654321f"] = draining_value(time.time() - 1).encode()
        with agent(swarm, consul, aws, intervalSeconds=30) as run:
            rounds(aws, 3)
            assert swarm.created == []
            del consul.kv[f"{DRAINING_PREFIX}i-0123456789abcdef0"]
            swarm.wait_until(lambda: len(swarm.created) >= 1)
            log = run.output()
        assert "rebalancing paused: i-0123456789abcdef0 draining" in log


def test_interrupted_moves_are_undone_or_finished() -> None:
    with FakeDocker(web_nodes()[:2]) as swarm, FakeConsul() as consul, FakeAws() as aws:
        swarm.add_container("api", node="web-1", labels=dict(OPT_IN))
        duplicate = swarm.add_container("api.rebalancing", node="web-2", labels=dict(OPT_IN))
        orphan = swarm.add_container("worker.rebalancing", node="web-2", labels=dict(OPT_IN), state="exited")
        with agent(swarm, consul, aws, minNodeAgeSeconds=3600):
            swarm.wait_until(lambda: duplicate.id in swarm.removed and (orphan.id, "worker") in swarm.renamed)
        assert where(swarm) == {"api": "web-1", "worker": "web-2"}
        assert swarm.container("worker").running


def test_publishes_each_groups_capacity_reservation() -> None:
    nodes = [
        FakeNode("web-1", "10.30.1.10:2375", cpus=2, memory=4 * GIB, labels={"docker.role": "web"}),
        FakeNode("web-2", "10.30.1.11:2375", cpus=2, memory=4 * GIB, labels={"docker.role": "web"}),
        FakeNode("db-1", "10.30.2.10:2375", cpus=2, memory=4 * GIB, labels={"docker.role": "db"}),
    ]
    with FakeDocker(nodes) as swarm, FakeConsul() as consul, FakeAws() as aws:
        swarm.add_container("app-1", node="web-1", cpus=1, memory=1 * GIB)
        swarm.add_container("app-2", node="web-2", memory=2 * GIB)
        swarm.add_container("db", node="db-1", cpus=2, memory=4 * GIB)
        with agent(swarm, consul, aws, roles=[]):
            rounds(aws, 1)
        assert aws.violations == []
        [call, *_] = aws.calls_of("PutMetricData")
        # Memory 3 of 8 GiB (Swarm's 4-digit print counted down by 0.05 %) beats CPU 1 of 4; the 2 GiB
        # container fits again on web-1 (3 GiB free), so no node more is asked for.
        assert call["Namespace"] == "SwarmCluster/staging"
        [datum] = call["MetricData"]
        assert datum["MetricName"] == "CapacityReservation"
        assert datum["Dimensions"] == [{"Name": "NodeGroup", "Value": "web"}]
        assert datum["Unit"] == "Percent" and 37.5 <= datum["Value"] <= 37.55
