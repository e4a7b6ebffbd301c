"""The drain agent executed as real processes against fakes of IMDS, Auto Scaling, Consul and Docker/Swarm.

Classic Swarm's primary is the one party not run here: `SwarmPrimary` plays its watchdog (when a node's
discovery key disappears it re-creates that node's `on-node-failure` containers on another node, as
cluster/watchdog.go does, and records whether the originals still ran at that moment).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from components.node_drain import HEARTBEAT_TIMEOUT_SECONDS
from node_agents.consul import Consul
from node_agents.docker import Docker
from node_agents.drain import (
    DISCOVERY_PREFIX,
    EXPECTED_PREFIX,
    LEADER_KEY,
    RESCHEDULED_PREFIX,
    plan_moves,
    witness_tick,
)
from node_agents.drain_signal import DRAINING_PREFIX
from node_agents.runtime import Clock, StateFile
from tests.fakes.agent_process import AgentProcess, agent_env
from tests.fakes.aws import FakeAws
from tests.fakes.consul import FakeConsul
from tests.fakes.docker import FakeDocker, FakeNode
from tests.fakes.imds import FakeImds
from tests.fakes.server import Reply, Request

SCALE = 0.002  # agent seconds -> real seconds: a 300 s window lasts 0.6 s, a 5 s poll 10 ms
GROUP = "staging-web"
IP, OTHER_IP, MANAGER_IP = "10.30.1.23", "10.30.1.24", "10.30.0.5"
RESCHEDULE = {"com.docker.swarm.reschedule-policies": '["on-node-failure"]'}
ENGINE_KEY = f"{DISCOVERY_PREFIX}{IP}:2375"
LIFECYCLE_ITEM = "autoscaling/target-lifecycle-state"


@dataclass
class Cluster:
    aws: FakeAws
    consul: FakeConsul
    swarm: FakeDocker  # what the managers serve on :4000
    tmp: Path
    stack: ExitStack
    agents: list[AgentProcess] = field(default_factory=list)

    def node(self, *, ip: str = IP, instance: str = "i-0aaaaaaaaaaaaaaa1", managers: int = 0) -> Node:
        imds = self.stack.enter_context(FakeImds(instance_id=instance, local_ipv4=ip))
        engine = self.stack.enter_context(FakeDocker([FakeNode(f"node-{ip}", f"{ip}:2375")], swarm=False))
        engine.add_container("swarm-agent", image="swarm:1.2.9")
        if managers:
            engine.add_container("swarm-manager", image="swarm:1.2.9")
        self.consul.kv[f"{DISCOVERY_PREFIX}{ip}:2375"] = f"{ip}:2375".encode()
        return Node(self, imds, engine, ip, instance, managers, self.tmp / f"state-{instance}.json")

    def start(self, node: Node, window: int = 300, scale: float = SCALE) -> AgentProcess:
        env = agent_env(
            node.imds.url,
            self.aws,
            AGENT_TIME_SCALE=str(scale),
            CONSUL_HTTP_ADDR=self.consul.url,
            DOCKER_HOST=node.engine.docker_host,
            DRAIN_GROUP=GROUP,
            DRAIN_HOOK=f"{GROUP}-drain",
            DRAIN_WINDOW_SECONDS=str(window),
            DRAIN_STATE=str(node.state),
            SWARM_AGENT_CONTAINER="swarm-agent",
        )
        if node.managers:
            env |= {
                "SWARM_MANAGERS": str(node.managers),
                "SWARM_MANAGER_CONTAINER": "swarm-manager",
                "SWARM_HOST": self.swarm.docker_host,
            }
        agent = AgentProcess("drain", [], env)
        agent.start()
        self.agents.append(agent)
        return agent

    def workload(self, node: Node, name: str, labels: dict[str, str] | None = None) -> str:
        """A container Swarm created on `node`: in the cluster's view and on the node's engine."""
        copy = self.swarm.add_container(name, node=f"node-{node.ip}", labels=dict(labels or {}))
        swarm_id = copy.labels["com.docker.swarm.id"]
        node.engine.add_container(name, labels={**copy.labels, "com.docker.swarm.id": swarm_id})
        return swarm_id


@dataclass
class Node:
    cluster: Cluster
    imds: FakeImds
    engine: FakeDocker
    ip: str
    instance: str
    managers: int
    state: Path

    def stopped(self) -> list[str]:
        return [self.engine.container(cid).name for cid, _ in self.engine.stopped]


class SwarmPrimary(threading.Thread):
    """Classic Swarm's primary watchdog for one node: once the node's discovery key is gone, re-create its
    reschedulable containers on `target` (same name and swarm id) and start them."""

    def __init__(self, cluster: Cluster, node: Node, target: str, on_leave: Callable[[], None] = lambda: None):
        super().__init__(daemon=True)
        self.cluster, self.node, self.target, self.on_leave = cluster, node, target, on_leave
        self.originals_running_at_leave: dict[str, bool] = {}
        self.leader_at_leave: bytes | None = None

    def run(self) -> None:
        key = f"{DISCOVERY_PREFIX}{self.node.ip}:2375"
        consul = self.cluster.consul
        consul.wait_until(lambda: key not in consul.kv, timeout=None)  # woken by the DELETE itself
        self.leader_at_leave = self.cluster.consul.kv.get(LEADER_KEY)
        self.originals_running_at_leave = {
            c.name: c.running for c in self.node.engine.containers.values() if "com.docker.swarm.id" in c.labels
        }
        self.on_leave()
        swarm = self.cluster.swarm
        for original in [c for c in swarm.containers.values() if c.node == f"node-{self.node.ip}"]:
            del swarm.containers[original.id]
            if RESCHEDULE.items() <= original.labels.items() and self.originals_running_at_leave[original.name]:
                swarm.add_container(original.name, node=self.target, labels=dict(original.labels))


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with ExitStack() as stack:
        aws = stack.enter_context(FakeAws())
        consul = stack.enter_context(FakeConsul())
        nodes = [FakeNode(f"node-{ip}", f"{ip}:2375") for ip in (IP, OTHER_IP, MANAGER_IP)]
        swarm = stack.enter_context(FakeDocker(nodes))
        consul.hold(LEADER_KEY, f"{MANAGER_IP}:4000".encode(), "session-primary")
        c = Cluster(aws, consul, swarm, tmp_path, stack)
        try:
            yield c
        finally:
            for agent in c.agents:
                agent.kill()
            assert aws.violations == [], "every AWS call matches botocore's model"


def finish(agent: AgentProcess) -> str:
    """The agent's output once it has completed the lifecycle action (it then idles: stop it)."""
    agent.stop()
    return agent.output()


def wait_for_completion(aws: FakeAws) -> None:
    aws.wait_until(lambda: bool(aws.calls_of("CompleteLifecycleAction")))


def witness_listings(consul: FakeConsul) -> int:
    return sum(1 for r in consul.requests if r.path == f"/v1/kv/{EXPECTED_PREFIX}")


def wait_for_polls(node: Node, polls: int = 3) -> None:
    """Until the node's agent has looked at its lifecycle state `polls` times (and could have acted)."""
    node.imds.wait_until(lambda: node.imds.gets(LIFECYCLE_ITEM) >= polls)


def test_normal_drain_moves_labelled_containers_before_stopping_anything(cluster: Cluster) -> None:
    node = cluster.node()
    witness = cluster.node(ip=MANAGER_IP, instance="i-0aaaaaaaaaaaaaaa9", managers=3)
    app = cluster.workload(node, "app", RESCHEDULE)
    cluster.workload(node, "cache")
    primary = SwarmPrimary(cluster, node, target=f"node-{OTHER_IP}")
    primary.start()
    agent, witnessing = cluster.start(node, window=3000), cluster.start(witness)
    wait_for_polls(node)
    wait_for_polls(witness)
    assert not cluster.aws.calls, "nothing happens while the instance is in service"
    began = time.monotonic()
    node.imds.set_lifecycle_state("Terminated")
    wait_for_completion(cluster.aws)
    took = time.monotonic() - began
    output = finish(agent)
    # The witness may be mid-tick with the announcement it listed just before the drain removed it: its
    # next tick (a new listing) begins once that one is over.
    listings = witness_listings(cluster.consul)
    cluster.consul.wait_until(lambda: witness_listings(cluster.consul) > listings)

    assert primary.originals_running_at_leave == {"app": True, "cache": True}, "left discovery first"
    assert cluster.swarm.container("app").node == f"node-{OTHER_IP}" and cluster.swarm.container("app").running
    assert cluster.swarm.container("app").labels["com.docker.swarm.id"] == app
    assert node.stopped()[0] == "swarm-agent" and sorted(node.stopped()[1:]) == ["app", "cache"]
    assert took < 3000 * SCALE / 2, "it waited for the witness's report, not for the whole window"
    [complete] = cluster.aws.calls_of("CompleteLifecycleAction")
    assert complete == {
        "AutoScalingGroupName": GROUP,
        "LifecycleHookName": f"{GROUP}-drain",
        "InstanceId": node.instance,
        "LifecycleActionResult": "CONTINUE",
    }
    assert cluster.aws.calls_of("RecordLifecycleActionHeartbeat")[0]["InstanceId"] == node.instance
    assert "cache: no reschedule:on-node-failure policy" in output
    assert "app: Swarm will reschedule it" in output
    assert not any(k.startswith((DRAINING_PREFIX, EXPECTED_PREFIX, RESCHEDULED_PREFIX)) for k in cluster.consul.kv)
    [signal] = [
        r for r in cluster.consul.requests if r.method == "PUT" and r.path.startswith(f"/v1/kv/{DRAINING_PREFIX}")
    ]
    assert signal.path == f"/v1/kv/{DRAINING_PREFIX}{node.instance}", "the rebalancer paused during the drain"
    assert float(signal.body) > time.time()
    assert ENGINE_KEY not in cluster.consul.kv
    assert witnessing.returncode is None, "the witness keeps running"


def test_a_restarted_agent_resumes_and_repeats_no_step(cluster: Cluster) -> None:
    node = cluster.node()
    swarm_id = cluster.workload(node, "app", RESCHEDULE)
    SwarmPrimary(cluster, node, target=f"node-{OTHER_IP}").start()
    agent = cluster.start(node, window=3000)
    node.imds.set_lifecycle_state("Terminated")
    agent.wait_for(r"step wait")  # logged once "leave" is recorded as done
    agent.kill()
    assert "leave" in StateFile(node.state).load()["done"]
    heartbeats_before = len(cluster.aws.calls_of("RecordLifecycleActionHeartbeat"))
    lines_before = len(agent.lines)

    agent.start()
    # still heartbeating
    cluster.aws.wait_until(lambda: len(cluster.aws.calls_of("RecordLifecycleActionHeartbeat")) > heartbeats_before)
    cluster.consul.kv[RESCHEDULED_PREFIX + IP] = json.dumps([swarm_id]).encode()  # the witness's report
    wait_for_completion(cluster.aws)
    output = "\n".join(finish(agent).splitlines()[lines_before:])

    assert node.stopped().count("swarm-agent") == 1
    assert node.stopped().count("app") == 1
    deletes = [r for r in cluster.consul.requests if r.method == "DELETE" and r.path == f"/v1/kv/{ENGINE_KEY}"]
    announcements = [
        r for r in cluster.consul.requests if r.method == "PUT" and r.path == f"/v1/kv/{EXPECTED_PREFIX}{IP}"
    ]
    assert len(deletes) == 1 and len(announcements) == 1
    assert len(cluster.aws.calls_of("CompleteLifecycleAction")) == 1
    assert "step announce" not in output and "step leave" not in output and "step wait" in output


def test_without_a_swarm_primary_it_waits_out_the_window_then_completes(cluster: Cluster) -> None:
    node = cluster.node()
    cluster.workload(node, "app", RESCHEDULE)
    cluster.consul.kv.pop(LEADER_KEY)
    cluster.consul.sessions.clear()
    agent = cluster.start(node, window=120)
    began = time.monotonic()
    node.imds.set_lifecycle_state("Terminated")
    wait_for_completion(cluster.aws)
    took = time.monotonic() - began
    output = finish(agent)

    assert took >= 120 * SCALE
    assert "no Swarm primary: containers will not be rescheduled" in output
    assert len(cluster.aws.calls_of("RecordLifecycleActionHeartbeat")) >= 3
    assert node.stopped() == ["swarm-agent", "app"]


def test_a_long_drain_keeps_the_hook_alive_with_heartbeats(cluster: Cluster) -> None:
    node = cluster.node()
    cluster.workload(node, "app", RESCHEDULE)  # nobody reports it moved: the whole window passes
    # Agent time must pass nearly as the agent counts it: at SCALE the real cost of each 5 s poll (a few
    # ms) would add seconds of agent time per poll and stretch the 30 s between heartbeats.
    scale, window = 0.01, 300  # 2.5 times the hook's heartbeat timeout
    agent = cluster.start(node, window=window, scale=scale)
    node.imds.set_lifecycle_state("Terminated")
    wait_for_completion(cluster.aws)
    output = finish(agent)

    heartbeats = [c for c in cluster.aws.calls if c.action == "RecordLifecycleActionHeartbeat"]
    assert len(heartbeats) >= window // 30 - 2, "one heartbeat per 30 s of the window"
    gaps = [(b.at - a.at) / scale for a, b in itertools.pairwise(heartbeats)]
    assert max(gaps) < HEARTBEAT_TIMEOUT_SECONDS, f"the hook would have expired between heartbeats: {gaps}"
    assert all(
        h.params == {"AutoScalingGroupName": GROUP, "LifecycleHookName": f"{GROUP}-drain", "InstanceId": node.instance}
        for h in heartbeats
    )
    assert "gave up waiting for rescheduled copies" in output


def test_heartbeat_failures_do_not_stop_the_drain(cluster: Cluster) -> None:
    node = cluster.node()
    cluster.aws.fail("ValidationError", action="RecordLifecycleActionHeartbeat", times=None)
    agent = cluster.start(node, window=60)
    node.imds.set_lifecycle_state("Terminated")
    wait_for_completion(cluster.aws)
    assert "heartbeat failed" in finish(agent)


def test_a_terminating_manager_hands_over_before_it_leaves(cluster: Cluster) -> None:
    manager = cluster.node(ip=MANAGER_IP, instance="i-0aaaaaaaaaaaaaaa5", managers=3)
    cluster.workload(manager, "app", RESCHEDULE)

    answer = cluster.consul.handle

    def replica_takes_over(request: Request) -> Reply:
        """A replica holds the lock as soon as the primary's session is destroyed."""
        reply = answer(request)
        if request.path == "/v1/session/destroy/session-primary":
            cluster.consul.hold(LEADER_KEY, f"{OTHER_IP}:4000".encode(), "session-new")
        return reply

    cluster.consul.handle = replica_takes_over  # type: ignore[method-assign]
    primary = SwarmPrimary(cluster, manager, target=f"node-{OTHER_IP}")
    primary.start()
    agent = cluster.start(manager, window=60)
    manager.imds.set_lifecycle_state("Terminated")
    wait_for_completion(cluster.aws)
    output = finish(agent)

    assert manager.stopped()[:2] == ["swarm-manager", "swarm-agent"]
    assert cluster.consul.destroyed_sessions == ["session-primary"]
    assert primary.leader_at_leave == f"{OTHER_IP}:4000".encode(), "a new primary existed before it left"
    assert f"Swarm primary is now {OTHER_IP}:4000" in output


def test_a_lone_manager_stays_primary_and_witnesses_its_own_drain(cluster: Cluster) -> None:
    manager = cluster.node(ip=MANAGER_IP, instance="i-0aaaaaaaaaaaaaaa5", managers=1)
    cluster.workload(manager, "app", RESCHEDULE)
    primary = SwarmPrimary(cluster, manager, target=f"node-{OTHER_IP}")
    primary.start()
    agent = cluster.start(manager, window=3000)
    began = time.monotonic()
    manager.imds.set_lifecycle_state("Terminated")
    wait_for_completion(cluster.aws)
    took = time.monotonic() - began
    output = finish(agent)

    assert "swarm-manager" not in manager.stopped(), "it keeps managing until the instance is gone"
    assert cluster.consul.destroyed_sessions == []
    assert cluster.swarm.container("app").node == f"node-{OTHER_IP}"
    assert took < 3000 * SCALE / 2, "its own witness reported the copy"
    assert "all 1 rescheduled containers run elsewhere" in output


def test_plan_moves_names_what_moves_and_what_is_lost() -> None:
    def listed(name: str, labels: dict[str, str], state: str = "running") -> dict[str, object]:
        return {"Names": [f"/{name}"], "State": state, "Labels": labels}

    moving, staying = plan_moves(
        [
            listed("app", {"com.docker.swarm.id": "a", **RESCHEDULE}),
            listed("db", {"com.docker.swarm.id": "b"}),
            listed("off", {"com.docker.swarm.id": "c", "com.docker.swarm.reschedule-policies": '["off"]'}),
            listed("done", {"com.docker.swarm.id": "d", **RESCHEDULE}, state="exited"),
            listed("swarm-agent", {}),
        ]
    )
    assert moving == {"a": "app"}
    assert staying == ["db", "off"]


def test_the_witness_reports_copies_elsewhere_and_drops_stale_announcements(cluster: Cluster) -> None:
    node = cluster.node()
    app = cluster.workload(node, "app", RESCHEDULE)
    moved = cluster.workload(node, "api", RESCHEDULE)
    cluster.swarm.container("api").node = f"node-{OTHER_IP}"  # already re-created elsewhere
    now = time.time()
    announce = {"expected": {app: "app", moved: "api"}, "expires": now + 60}
    cluster.consul.kv[EXPECTED_PREFIX + IP] = json.dumps(announce).encode()
    stale = {"expected": {}, "expires": now - 1}
    cluster.consul.kv[EXPECTED_PREFIX + "10.30.9.9"] = json.dumps(stale).encode()
    cluster.consul.kv[RESCHEDULED_PREFIX + "10.30.9.9"] = b"[]"

    witness_tick(Docker(cluster.swarm.docker_host), Consul(cluster.consul.url), Clock())

    assert json.loads(cluster.consul.kv[RESCHEDULED_PREFIX + IP]) == [moved]
    assert EXPECTED_PREFIX + "10.30.9.9" not in cluster.consul.kv
    assert RESCHEDULED_PREFIX + "10.30.9.9" not in cluster.consul.kv


def test_the_witness_leaves_no_report_behind_a_drain_that_completed_meanwhile(cluster: Cluster) -> None:
    node = cluster.node()
    app = cluster.workload(node, "app", RESCHEDULE)
    cluster.swarm.container("app").node = f"node-{OTHER_IP}"
    cluster.consul.kv[EXPECTED_PREFIX + IP] = json.dumps(
        {"expected": {app: "app"}, "expires": time.time() + 60}
    ).encode()
    answer = cluster.consul.handle

    def completing_meanwhile(request: Request) -> Reply:
        """The drain completes (removes its announcement) after the witness listed it."""
        if request.path == f"/v1/kv/{RESCHEDULED_PREFIX}{IP}" and request.method == "GET":
            cluster.consul.kv.pop(EXPECTED_PREFIX + IP, None)
        return answer(request)

    cluster.consul.handle = completing_meanwhile  # type: ignore[method-assign]
    witness_tick(Docker(cluster.swarm.docker_host), Consul(cluster.consul.url), Clock())

    assert [k for k in cluster.consul.kv if k.startswith((EXPECTED_PREFIX, RESCHEDULED_PREFIX))] == []


def test_a_replica_manager_does_not_witness(cluster: Cluster) -> None:
    cluster.swarm.role, cluster.swarm.primary = "replica", f"{MANAGER_IP}:4000"
    cluster.consul.kv[EXPECTED_PREFIX + IP] = json.dumps({"expected": {}, "expires": time.time() + 60}).encode()
    witness_tick(Docker(cluster.swarm.docker_host), Consul(cluster.consul.url), Clock())
    assert RESCHEDULED_PREFIX + IP not in cluster.consul.kv
