"""Carry out a planned move through the primary Swarm manager: clone, then stop.

1. Create a copy under `<name>.rebalancing` with the soft constraint `node==~<target engine id>`: Swarm's
   scheduler tries soft expressions first (scheduler/scheduler.go), so the copy lands on the target when
   every hard filter allows it there; a copy that lands elsewhere is removed and the move abandoned. A soft
   constraint, unlike `node==<id>`, does not pin the copy for ever: the watchdog can still reschedule it
   when its node fails (cluster/watchdog.go re-creates it through the same scheduler).
2. Start it and wait until it runs (and is healthy, when its image or run declares a health check).
3. Only then stop and remove the original, and give the copy the original's name.

A restart of the agent mid-move finds the `.rebalancing` copy: if the original still exists the copy is
removed (the move starts over later), otherwise the copy is renamed (the move is finished).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from node_agents.docker import SWARM_ID_LABEL, SWARM_LABEL_PREFIX, Docker, stop_timeout
from node_agents.http import HttpStatusError
from node_agents.rebalance_plan import Move
from node_agents.runtime import Clock, log

AGENT = "rebalance"
COPY_SUFFIX = ".rebalancing"
CONSTRAINTS_LABEL = SWARM_LABEL_PREFIX + "constraints"
POLL_SECONDS = 2.0
# Without a health check "running" is all there is to see; a copy must stay up this long to count.
SETTLE_SECONDS = 10.0


def _soft_node(expression: str) -> bool:
    return expression.replace(" ", "").startswith("node==~")


def copy_config(inspected: Mapping[str, Any], target_id: str) -> dict[str, Any]:
    """The create body of a copy: the original's config and host config, a fresh Swarm id, and the soft
    constraint that places it on the target instead of wherever the original was pinned softly."""
    config = dict(inspected.get("Config") or {})
    labels = {k: v for k, v in (config.get("Labels") or {}).items() if k != SWARM_ID_LABEL}
    try:
        stored = json.loads(labels.get(CONSTRAINTS_LABEL, "[]"))
    except ValueError:
        stored = []
    labels[CONSTRAINTS_LABEL] = json.dumps([c for c in stored if not _soft_node(c)] + [f"node==~{target_id}"])
    env = [
        e
        for e in config.get("Env") or []
        if not (e.startswith("constraint:") and _soft_node(e.removeprefix("constraint:")))
    ]
    short_id = str(inspected.get("Id", ""))[:12]
    if config.get("Hostname") == short_id:
        del config["Hostname"]  # Docker's default, the original's id: the copy gets its own
    body: dict[str, Any] = {**config, "Labels": labels, "Env": env, "HostConfig": inspected.get("HostConfig") or {}}
    mode = str(body["HostConfig"].get("NetworkMode") or "")
    attached = ((inspected.get("NetworkSettings") or {}).get("Networks") or {}).get(mode)
    if attached:
        aliases = [a for a in attached.get("Aliases") or [] if a != short_id]
        body["NetworkingConfig"] = {"EndpointsConfig": {mode: {"Aliases": aliases}}}
    return body


class Mover:
    def __init__(self, swarm: Docker, clock: Clock, *, health_timeout: float) -> None:
        self.swarm = swarm
        self.clock = clock
        self.health_timeout = health_timeout

    def _inspect(self, ident: str) -> dict[str, Any]:
        found = self.swarm.inspect(ident)
        if found is None:
            raise _Abandon("the copy disappeared")
        return found

    def move(self, move: Move, inspected: Mapping[str, Any]) -> bool:
        """True when the container now runs on the target under its own name; False leaves the original
        running untouched (and no copy behind)."""
        name, target = move.container.name, move.target
        what = f"{name} {move.source.name} -> {target.name}"
        copy = ""
        try:
            copy = self.swarm.create(copy_config(inspected, target.id), name=name + COPY_SUFFIX)
            placed = str((self._inspect(copy).get("Node") or {}).get("ID", ""))
            if placed != target.id:
                raise _Abandon(f"Swarm placed the copy on {placed or 'an unknown node'}")
            self.swarm.start(copy)
            self._wait_ready(copy)
        except (_Abandon, HttpStatusError) as reason:
            log(AGENT, f"move {what} abandoned, original kept: {reason}")
            if copy:
                self.swarm.remove(copy, force=True)
            return False
        self.swarm.stop(move.container.id, timeout=stop_timeout(inspected))
        self.swarm.remove(move.container.id)
        self.swarm.rename(copy, name)
        log(AGENT, f"moved {what}")
        return True

    def _wait_ready(self, copy: str) -> None:
        waited = 0.0
        while True:
            state = self._inspect(copy).get("State") or {}
            health = (state.get("Health") or {}).get("Status")
            if not state.get("Running"):
                if state.get("Status") in ("exited", "dead"):
                    raise _Abandon(f"the copy stopped ({state.get('Status')}, exit code {state.get('ExitCode')})")
            elif health == "healthy" or (health is None and waited >= SETTLE_SECONDS):
                return
            if waited >= self.health_timeout:
                wanted = "healthy" if health else "running"
                raise _Abandon(f"the copy was not {wanted} within {self.health_timeout:.0f}s")
            self.clock.sleep(POLL_SECONDS)
            waited += POLL_SECONDS

    def finish_interrupted(self, names: Mapping[str, str]) -> None:
        """`names`: container name -> id of every container. Undo or complete moves a restart cut short."""
        for name, ident in names.items():
            if not name.endswith(COPY_SUFFIX):
                continue
            original = name.removesuffix(COPY_SUFFIX)
            if original in names:
                self.swarm.remove(ident, force=True)
                log(AGENT, f"interrupted move of {original} undone: its copy is removed, the original runs on")
            else:
                self.swarm.rename(ident, original)
                self.swarm.start(ident)
                log(AGENT, f"interrupted move of {original} finished: its copy now carries the name")


class _Abandon(Exception):
    pass
