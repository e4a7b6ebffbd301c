"""The agent every Swarm manager runs; only the primary manager acts.

Every minute it publishes each autoscaled group's capacity-reservation metric (capacity.py), and, for the
roles that have rebalancing on, every rebalancing interval it finishes moves a restart cut short, then moves
at most `maxMoves` opted-in containers, one at a time, planning again after each (rebalance_plan.py). It
pauses rebalancing while any node drains (drain_signal.py) or when Consul cannot say.

Configuration: the JSON document in PRIMARY_AGENT_SETTINGS (rendering.primary_agent writes it into the
managers' user-data); the local manager at SWARM_HOST (default tcp://127.0.0.1:4000); Consul at
CONSUL_HTTP_ADDR; AWS as in aws.py.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from typing import Any

from node_agents.aws import Aws
from node_agents.capacity import Group, metric_data, namespace
from node_agents.consul import Consul
from node_agents.docker import Docker
from node_agents.drain_signal import DRAINING_PREFIX, active_drains
from node_agents.rebalance import Mover
from node_agents.rebalance_plan import Container, Policy, plan
from node_agents.runtime import Clock, log
from node_agents.swarm_state import Snapshot, read

AGENT = "primary-agent"
SETTINGS_VARIABLE = "PRIMARY_AGENT_SETTINGS"
METRIC_PERIOD = 60.0
FAILED_MOVE_PAUSE = 3600.0


@dataclass(frozen=True)
class Settings:
    environment: str
    groups: tuple[Group, ...]
    policy: Policy
    interval: float
    health_timeout: float

    @classmethod
    def parse(cls, data: dict[str, Any]) -> Settings:
        r = data["rebalance"]
        return cls(
            environment=str(data["environment"]),
            groups=tuple(Group(g["name"], g["role"], float(g["targetPercent"])) for g in data["groups"]),
            policy=Policy(
                roles=frozenset(r["roles"]),
                gap_threshold=int(r["gapThreshold"]),
                max_moves=int(r["maxMovesPerInterval"]),
                min_container_age=float(r["minContainerAgeSeconds"]),
                min_node_age=float(r["minNodeAgeSeconds"]),
            ),
            interval=float(r["intervalSeconds"]),
            health_timeout=float(r["healthTimeoutSeconds"]),
        )


class PrimaryAgent:
    def __init__(self, settings: Settings, swarm: Docker, consul: Consul, aws: Aws, clock: Clock) -> None:
        self.settings = settings
        self.swarm = swarm
        self.consul = consul
        self.aws = aws
        self.clock = clock
        self.mover = Mover(swarm, clock, health_timeout=settings.health_timeout)
        self.first_seen: dict[str, float] = {}
        self.failed: dict[str, float] = {}  # container id -> when its last move was abandoned
        self.was_primary: bool | None = None
        self.next_rebalance = 0.0

    def snapshot(self) -> Snapshot:
        return read(self.swarm, self.first_seen, self.clock.now())

    def cycle(self) -> None:
        view = self.snapshot()
        if view.primary != self.was_primary:
            log(AGENT, "this manager is the primary: acting" if view.primary else "this manager is a replica: idle")
            self.was_primary = view.primary
        if not view.primary:
            return
        self.publish(view)
        if self.settings.policy.roles and self.clock.monotonic() >= self.next_rebalance:
            self.next_rebalance = self.clock.monotonic() + self.settings.interval
            self.rebalance(view)

    def publish(self, view: Snapshot) -> None:
        data = metric_data(self.settings.groups, view.nodes, view.containers)
        if data:
            params = {"Namespace": namespace(self.settings.environment), "MetricData": data}
            self.aws.call("cloudwatch", "PutMetricData", params)

    def rebalance(self, view: Snapshot) -> None:
        self.mover.finish_interrupted({c.name: c.id for c in view.containers})
        try:
            entries = {e.key: e.value.decode("utf-8", "replace") for e in self.consul.kv_list(DRAINING_PREFIX)}
        except Exception as error:
            log(AGENT, f"rebalancing paused: cannot tell whether a node drains ({error})")
            return
        drains = active_drains(entries, self.clock.now())
        single = replace(self.settings.policy, max_moves=1)
        for _ in range(self.settings.policy.max_moves):
            result = plan(view.nodes, self.without_failed(view), single, drains)
            if result.paused:
                log(AGENT, f"rebalancing {result.paused}")
            if not result.moves:
                return
            (move,) = result.moves
            if not self.mover.move(move, view.inspected[move.container.id]):
                self.failed[move.container.id] = self.clock.now()
                return
            view = self.snapshot()

    def without_failed(self, view: Snapshot) -> list[Container]:
        """A container whose copy did not come up is left alone for FAILED_MOVE_PAUSE, not retried every round."""
        now = self.clock.now()
        self.failed = {i: t for i, t in self.failed.items() if now - t < FAILED_MOVE_PAUSE}
        return [replace(c, fixed="its last move failed") if c.id in self.failed else c for c in view.containers]

    def run(self) -> None:
        while True:
            try:
                self.cycle()
            except Exception as error:  # one bad cycle (a manager restarting, AWS throttling) must not end the agent
                log(AGENT, f"cycle failed: {type(error).__name__}: {error}")
            self.clock.sleep(METRIC_PERIOD)


def main() -> None:
    settings = Settings.parse(json.loads(os.environ[SETTINGS_VARIABLE]))
    clock = Clock.from_env()
    swarm = Docker(os.environ.get("SWARM_HOST", "tcp://127.0.0.1:4000"))
    PrimaryAgent(settings, swarm, Consul(), Aws(agent=AGENT, clock=clock), clock).run()


if __name__ == "__main__":
    main()
