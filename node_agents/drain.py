"""Drain agent: runs on every Swarm node; when Auto Scaling decides to terminate the node, moves its
containers to other nodes before the instance goes.

Auto Scaling holds a terminating instance in Terminating:Wait (the group's termination lifecycle hook,
components/node_drain.py) and instance metadata's `autoscaling/target-lifecycle-state` turns
`Terminated`. Then, once (each finished step is recorded in a state file on the host, so a restarted
agent resumes at the step it was in and never repeats one):

0. signal: `swarm-cluster/draining/<instance id>` in Consul pauses the rebalancer (node_agents.drain_signal).
1. handover (managers with replicas): stop the local `swarm manage` and, if it held the Consul leader
   lock `docker/swarm/leader`, destroy that lock's session so a replica takes it at once instead of
   after the lock TTL (20 s); wait for the new primary. A lone manager has nobody to hand over to: it
   stays primary through its own drain, so its watchdog moves its containers, and stops with the node.
2. announce: wait for a Swarm primary (the leader lock held), then record under EXPECTED_PREFIX which
   containers should move; log by name those that will not (no reschedule policy).
3. leave: stop the node's `swarm join` (it would re-register within its 60 s heartbeat) and delete its
   discovery key `docker/nodes/<ip>:2375` (otherwise it lives until its session TTL, up to 180 s).
   Every manager watches that prefix with a blocking query, so the primary drops the engine at once,
   and its watchdog re-creates every container with the `on-node-failure` policy elsewhere, starting
   the copy because the original still runs (classicswarm v1.2.9 cluster/watchdog.go).
4. wait: until the primary's drain agent (the witness, see `witness_tick`) reports every announced
   container running on another node, or the drain window ends.
5. stop: stop the node's Swarm containers gracefully, all at once, each with its own stop timeout.
6. complete: `CompleteLifecycleAction` (CONTINUE) with the instance id; forget the announcement.

Through steps 1-4 it records a lifecycle heartbeat every HEARTBEAT_INTERVAL seconds, so the hook's
short heartbeat timeout only matters when the agent is dead.

Worker nodes cannot reach the Swarm API (only managers may: it owns every engine), so on managers the
same agent is the witness: while its manager is primary, it compares each announcement with the
cluster's containers and writes what already runs elsewhere to `swarm-cluster/rescheduled/<ip>`.

Configuration (environment): DRAIN_GROUP, DRAIN_HOOK, DRAIN_WINDOW_SECONDS, DRAIN_STATE (state file),
SWARM_AGENT_CONTAINER and SWARM_MANAGER_CONTAINER (the RancherOS services' names), SWARM_MANAGERS (on
managers: how many the group runs), SWARM_HOST (the local manager's API, managers only), DOCKER_HOST
(the node's engine), CONSUL_HTTP_ADDR, and node_agents.aws's AWS variables.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from node_agents.aws import Aws, AwsError
from node_agents.consul import Consul
from node_agents.docker import SWARM_ID_LABEL, Docker, split_swarm_name, stop_timeout, swarm_list_label
from node_agents.drain_signal import DRAINING_PREFIX, draining_value
from node_agents.http import HttpError
from node_agents.imds import Imds, ImdsError
from node_agents.runtime import Clock, StateFile, log

AGENT = "drain"
ENGINE_PORT = 2375
MANAGER_PORT = 4000
POLL_SECONDS = 5.0
HEARTBEAT_INTERVAL = 30.0  # well inside the hook's heartbeat timeout (components.node_drain)
HANDOVER_SECONDS = 60.0  # a replica takes a released lock within a second; longer means there is none
DISCOVERY_PREFIX = "docker/nodes/"  # swarm join's key: <prefix><ip>:2375, value <ip>:2375
LEADER_KEY = "docker/swarm/leader"  # swarm manage --replication's lock; value: the primary's ip:4000
EXPECTED_PREFIX = "swarm-cluster/reschedule-expected/"  # <ip>: what the draining node expects to move
RESCHEDULED_PREFIX = "swarm-cluster/rescheduled/"  # <ip>: what the witness saw running elsewhere
# After its window a drain still stops containers and completes; past this, its Consul entries are stale.
FINISH_ALLOWANCE_SECONDS = 120.0
RESCHEDULE = "on-node-failure"
STATE_DIR = "/var/lib/swarm-cluster/drain"  # on the host: a restarted container resumes from it
STEPS = ("signal", "handover", "announce", "leave", "wait", "stop", "complete")


@dataclass(frozen=True)
class Settings:
    group: str
    hook: str
    window: float
    state_path: str
    managers: int  # managers in this node's group; 0 on workers
    swarm_agent: str  # container names of the RancherOS services (rendering.swarm_node)
    swarm_manager: str

    @property
    def hands_over(self) -> bool:
        return self.managers > 1

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            group=os.environ["DRAIN_GROUP"],
            hook=os.environ["DRAIN_HOOK"],
            window=float(os.environ["DRAIN_WINDOW_SECONDS"]),
            state_path=os.environ.get("DRAIN_STATE", f"{STATE_DIR}/state.json"),
            managers=int(os.environ.get("SWARM_MANAGERS", "0")),
            swarm_agent=os.environ["SWARM_AGENT_CONTAINER"],
            swarm_manager=os.environ.get("SWARM_MANAGER_CONTAINER", ""),
        )


# -- pure decisions ---------------------------------------------------------------------------------


def steps_for(hands_over: bool) -> tuple[str, ...]:
    return STEPS if hands_over else tuple(step for step in STEPS if step != "handover")


def next_step(state: dict[str, Any], hands_over: bool) -> str | None:
    """The first step not yet done; None once the drain is complete."""
    done = set(state.get("done", []))
    return next((step for step in steps_for(hands_over) if step not in done), None)


def reschedulable(container: dict[str, Any]) -> bool:
    """What classic Swarm's watchdog re-creates: the policy from `-e reschedule:on-node-failure` (moved to
    this label at create) or the label set directly."""
    return RESCHEDULE in swarm_list_label(container, "reschedule-policies")


def swarm_containers(containers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Containers created through Swarm (the cluster's workloads), not the node's own services."""
    return [c for c in containers if SWARM_ID_LABEL in (c.get("Labels") or {})]


def local_name(container: dict[str, Any]) -> str:
    return split_swarm_name((container.get("Names") or ["/?"])[0])[1]


def plan_moves(containers: list[dict[str, Any]]) -> tuple[dict[str, str], list[str]]:
    """({swarm id: name} of running Swarm containers that will move, sorted names of those that will not)."""
    running = [c for c in swarm_containers(containers) if c.get("State") == "running"]
    moving = {c["Labels"][SWARM_ID_LABEL]: local_name(c) for c in running if reschedulable(c)}
    staying = sorted(local_name(c) for c in running if not reschedulable(c))
    return moving, staying


def running_elsewhere(
    cluster: list[dict[str, Any]], node_addresses: dict[str, str], expected: dict[str, str], engine: str
) -> list[str]:
    """Swarm ids of `expected` that run on a node other than `engine` (ip:2375), from the primary's list."""
    found = set()
    for container in cluster:
        swarm_id = (container.get("Labels") or {}).get(SWARM_ID_LABEL)
        node = split_swarm_name((container.get("Names") or ["/"])[0])[0]
        if swarm_id in expected and container.get("State") == "running" and node_addresses.get(node) != engine:
            found.add(swarm_id)
    return sorted(found)


# -- the node's own drain ---------------------------------------------------------------------------


class Drain:
    def __init__(self, settings: Settings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        self.imds = Imds()
        self.aws = Aws(agent=AGENT, clock=clock, imds=self.imds)
        self.consul = Consul()
        self.engine = Docker()
        self.swarm = Docker(os.environ.get("SWARM_HOST")) if settings.managers else None
        self.state = StateFile(settings.state_path)
        self.ip = self.imds.require("local-ipv4")
        self.instance = self.imds.instance_id()

    # time: wall clock (it survives a restart of the agent), in agent seconds (AGENT_TIME_SCALE)
    def elapsed(self, since: float) -> float:
        return (self.clock.now() - since) / self.clock.scale

    def remaining(self) -> float:
        return self.settings.window - self.elapsed(self.state.load()["started"])

    def run(self) -> None:
        log(
            AGENT,
            f"watching the lifecycle of {self.instance} ({self.settings.group}, window {self.settings.window:.0f} s)",
        )
        while True:
            state = self.state.load()
            if state.get("instance") == self.instance and next_step(state, self.settings.hands_over) is None:
                self.clock.sleep(POLL_SECONDS * 12)  # done: the instance is about to go
            elif state.get("instance") == self.instance or self._terminating():
                self.drain()
            else:
                if self.swarm is not None:
                    witness_tick(self.swarm, self.consul, self.clock)
                self.clock.sleep(POLL_SECONDS)

    def _terminating(self) -> bool:
        try:
            lifecycle = self.imds.target_lifecycle_state()
        except (HttpError, ImdsError) as error:
            log(AGENT, f"instance metadata unreadable: {error}")
            return False
        if lifecycle != "Terminated":
            return False
        log(AGENT, "Auto Scaling is terminating this instance: draining")
        self.state.save({"instance": self.instance, "started": self.clock.now(), "done": [], "heartbeat": 0.0})
        return True

    def drain(self) -> None:
        actions: dict[str, Callable[[], None]] = {
            "signal": self.signal,
            "handover": self.handover,
            "announce": self.announce,
            "leave": self.leave,
            "wait": self.wait_for_copies,
            "stop": self.stop_containers,
            "complete": self.complete,
        }
        while (step := next_step(self.state.load(), self.settings.hands_over)) is not None:
            log(AGENT, f"step {step}")
            actions[step]()
            state = self.state.load()
            self.state.update(done=[*state["done"], step])

    def heartbeat(self) -> None:
        last = float(self.state.load().get("heartbeat", 0.0))  # 0.0 before the first: due at once
        if self.elapsed(last) < HEARTBEAT_INTERVAL:
            return
        try:
            self.aws.call("autoscaling", "RecordLifecycleActionHeartbeat", self._action())
        except (AwsError, HttpError) as error:
            log(AGENT, f"heartbeat failed: {error}")
        self.state.update(heartbeat=self.clock.now())

    def _action(self) -> dict[str, str]:
        return {
            "AutoScalingGroupName": self.settings.group,
            "LifecycleHookName": self.settings.hook,
            "InstanceId": self.instance,
        }

    def wait(self, what: str, done: Callable[[], bool], limit: float | None = None) -> bool:
        """Polls `done` until it holds or the window (or `limit` seconds) runs out, heartbeating."""
        start = self.clock.now()
        while True:
            self.heartbeat()
            if self.swarm is not None and not self.settings.hands_over:
                witness_tick(self.swarm, self.consul, self.clock)  # a lone manager witnesses its own drain
            try:
                if done():
                    return True
            except HttpError as error:
                log(AGENT, f"{what}: {error}")
            out = self.remaining() <= 0 or (limit is not None and self.elapsed(start) >= limit)
            if out:
                log(AGENT, f"gave up waiting for {what}")
                return False
            self.clock.sleep(POLL_SECONDS)

    def deadline(self) -> float:
        """Unix time after which this drain's Consul entries are stale (the node died mid-drain)."""
        started = float(self.state.load()["started"])
        return started + (self.settings.window + FINISH_ALLOWANCE_SECONDS) * self.clock.scale

    def signal(self) -> None:
        """Tell the rebalancer (node_agents.drain_signal) to move nothing until this drain is over."""
        self.consul.kv_put(DRAINING_PREFIX + self.instance, draining_value(self.deadline()).encode())

    def _leader(self) -> tuple[str, str]:
        """(address, session) of the Swarm leader lock; ("", "") when nobody holds it."""
        entry = self.consul.kv_get(LEADER_KEY)
        if entry is None or not entry.session:
            return "", ""
        return entry.value.decode("utf-8"), entry.session

    def handover(self) -> None:
        mine = f"{self.ip}:{MANAGER_PORT}"
        self.engine.stop(self.settings.swarm_manager)
        leader, session = self._leader()
        if leader == mine:
            # swarm manage exits without resigning (log.Fatal skips its deferred Resign): release the
            # lock now instead of after its session TTL.
            self.consul.session_destroy(session)
            log(AGENT, "released the Swarm leader lock")
        if self.wait("a new Swarm primary", lambda: self._leader()[0] not in ("", mine), HANDOVER_SECONDS):
            log(AGENT, f"Swarm primary is now {self._leader()[0]}")
        else:
            self.state.update(no_primary=True)

    def announce(self) -> None:
        # After a handover that found no replica, waiting longer for a primary is pointless.
        known_absent = bool(self.state.load().get("no_primary"))
        if known_absent or not self.wait("a Swarm primary to reschedule containers", lambda: bool(self._leader()[0])):
            log(AGENT, "no Swarm primary: containers will not be rescheduled")
        moving, staying = plan_moves(self.engine.containers())
        for name in staying:
            log(AGENT, f"{name}: no reschedule:on-node-failure policy; it stops with this node and is not recreated")
        for name in sorted(moving.values()):
            log(AGENT, f"{name}: Swarm will reschedule it")
        announcement = {"expected": moving, "expires": self.deadline()}
        self.consul.kv_put(EXPECTED_PREFIX + self.ip, json.dumps(announcement, sort_keys=True).encode())
        self.state.update(expected=moving)

    def leave(self) -> None:
        self.engine.stop(self.settings.swarm_agent)
        self.consul.kv_delete(f"{DISCOVERY_PREFIX}{self.ip}:{ENGINE_PORT}")
        log(AGENT, "left Swarm discovery; the primary reschedules now")

    def wait_for_copies(self) -> None:
        expected: dict[str, str] = self.state.load().get("expected", {})

        def moved() -> bool:
            entry = self.consul.kv_get(RESCHEDULED_PREFIX + self.ip)
            running = set(json.loads(entry.value)) if entry else set()
            return set(expected) <= running

        if expected and self.wait("rescheduled copies to run elsewhere", moved):
            log(AGENT, f"all {len(expected)} rescheduled containers run elsewhere")

    def stop_containers(self) -> None:
        running = [c for c in swarm_containers(self.engine.containers()) if c.get("State") == "running"]

        def stop(container: dict[str, Any]) -> None:
            self.engine.stop(container["Id"], timeout=stop_timeout(self.engine.inspect(container["Id"]) or {}))
            log(AGENT, f"stopped {local_name(container)}")

        with ThreadPoolExecutor(max_workers=max(1, min(16, len(running)))) as pool:
            for outcome in [pool.submit(stop, c) for c in running]:
                error = outcome.exception()
                if error is not None:
                    log(AGENT, f"stop failed: {error}")

    def complete(self) -> None:
        # Consul first: once the action completes, the instance may be gone before anything else runs.
        for key in (EXPECTED_PREFIX + self.ip, RESCHEDULED_PREFIX + self.ip, DRAINING_PREFIX + self.instance):
            try:
                self.consul.kv_delete(key)
            except HttpError as error:
                log(AGENT, f"could not remove {key}: {error}")
        try:
            self.aws.call(
                "autoscaling", "CompleteLifecycleAction", {**self._action(), "LifecycleActionResult": "CONTINUE"}
            )
            log(AGENT, "lifecycle action completed: the instance terminates now")
        except (AwsError, HttpError) as error:
            log(AGENT, f"could not complete the lifecycle action ({error}); the hook's timeout will")


# -- the witness (managers) -------------------------------------------------------------------------


def witness_tick(swarm: Docker, consul: Consul, clock: Clock) -> None:
    """On the primary: report which announced containers already run elsewhere."""
    try:
        info = swarm.swarm_info()
        if info.role != "primary":
            return
        announcements = consul.kv_list(EXPECTED_PREFIX)
        if not announcements:
            return
        cluster = swarm.containers(all=True)
        addresses = {node.name: node.addr for node in info.nodes}
        for entry in announcements:
            ip = entry.key[len(EXPECTED_PREFIX) :]
            announcement = json.loads(entry.value)
            if clock.now() > float(announcement["expires"]):
                consul.kv_delete(entry.key)
                consul.kv_delete(RESCHEDULED_PREFIX + ip)
                continue
            running = running_elsewhere(cluster, addresses, announcement["expected"], f"{ip}:{ENGINE_PORT}")
            report = json.dumps(running).encode()
            current = consul.kv_get(RESCHEDULED_PREFIX + ip)
            if current is None or current.value != report:
                consul.kv_put(RESCHEDULED_PREFIX + ip, report)
                # The drain may have completed (and removed both keys) since the list above: a report
                # written after that would be left behind for ever.
                if consul.kv_get(entry.key) is None:
                    consul.kv_delete(RESCHEDULED_PREFIX + ip)
    except (HttpError, ValueError, KeyError) as error:
        log(AGENT, f"witness: {error}")


def main() -> None:
    Drain(Settings.from_env(), Clock.from_env()).run()


if __name__ == "__main__":
    main()
