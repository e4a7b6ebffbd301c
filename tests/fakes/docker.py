"""FakeDocker: a Docker Engine API, or a classic Swarm 1.2.9 manager serving it for a whole cluster.

    with FakeDocker(nodes=[FakeNode("web-1", "10.30.1.10:2375", labels={"docker.role": "web"}),
                           FakeNode("web-2", "10.30.1.11:2375")]) as swarm:
        env = {"DOCKER_HOST": swarm.docker_host}
        swarm.add_container("app", node="web-1", labels={"com.docker.swarm.reschedule-policies": '["on-node-failure"]'})
        ...run the agent...
        assert swarm.container("app").node == "web-2"

Swarm mode (the default, `swarm=True`) answers like classic Swarm 1.2.9 (see node_agents.docker's
docstring for the sources): listed names `/<node>/<name>`, inspect with `Node`, `/info` with the
node list and reservations in `SystemStatus`, role `primary` (or `replica` with `primary=`), and
`create` schedules: env `constraint:k==v` / `k!=v` (`node` is the node's name or id, other keys its
labels) and the `com.docker.swarm.constraints` label pick the candidates, soft `==~` ones first and then
without them (scheduler.go), reservations (`HostConfig.Memory`, `HostConfig.CpuShares` counted as CPUs,
as Swarm does) must fit, then the node with the fewest containers wins (Swarm's default `spread`).
Constraint/affinity/reschedule env entries move into Swarm's JSON-list labels, and every container gets
a `com.docker.swarm.id`.
Engine mode (`swarm=False`, one node) answers like a node's own dockerd: names `/<name>`, plain `/info`.

API: `/_ping`, `/info`, `/networks` (the `networks` list), `/containers/json` (`all`, filters `label`,
`status`, `name`, `id`, `node`, `health`), `/containers/<id>/json`, `create` (`?name=`, 409 on a taken
name), `start` (304 when running), `stop` (`?t=`, 304 when stopped), `DELETE` (`?force=`, 409 for a
running one), `rename`.
Any `/vX.Y` prefix is accepted. Test controls: `add_node`, `set_node_status`, `remove_node`,
`add_container`, `set_state`, `set_health`, `container(name)`, `fail(method, path_pattern, status)`.
Records: `requests` (every call), `created` / `started` / `stopped` / `removed` / `renamed` (ids and
names in call order).
"""

from __future__ import annotations

import itertools
import json
import re
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from tests.fakes.server import FakeServer, Reply, Request

GIB = 1 << 30
_VERSION = re.compile(r"^/v[0-9]+\.[0-9]+(?=/)")
_SWARM_ENV = {"constraint": "constraints", "affinity": "affinities", "reschedule": "reschedule-policies"}
_EXPR = re.compile(r"(?P<key>[^=!]+)(?P<op>==|!=)(?P<value>.+)")


@dataclass
class FakeNode:
    name: str
    addr: str
    cpus: int = 2
    memory: int = 8 * GIB
    labels: dict[str, str] = field(default_factory=dict)
    status: str = "Healthy"
    id: str = ""

    def __post_init__(self) -> None:
        self.id = self.id or f"ID-{self.name.upper()}"


@dataclass
class FakeContainer:
    id: str
    name: str
    node: str
    image: str = "app:1"
    env: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    state: str = "running"  # created, running, exited
    created: float = field(default_factory=time.time)
    health: str | None = None  # starting, healthy, unhealthy; None: no healthcheck
    memory: int = 0
    cpus: int = 0  # HostConfig.CpuShares, which Swarm reserves as CPUs
    config: dict[str, Any] = field(default_factory=dict)  # the create body, as sent

    @property
    def running(self) -> bool:
        return self.state == "running"


@dataclass
class _Failure:
    method: str
    pattern: re.Pattern[str]
    status: int
    message: str
    times: int | None


def _rfc3339(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _size(value: int) -> str:
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    size, n = float(value), 0
    while size >= 1024 and n < len(units) - 1:
        size, n = size / 1024, n + 1
    return f"{size:.4g} {units[n]}"


class FakeDocker(FakeServer):
    def __init__(
        self,
        nodes: list[FakeNode] | None = None,
        *,
        swarm: bool = True,
        role: str = "primary",
        primary: str = "",
        auto_healthy: bool = True,
    ) -> None:
        super().__init__()
        self.swarm = swarm
        self.role, self.primary = role, primary
        self.auto_healthy = auto_healthy  # a started container with a healthcheck is healthy at once
        # copies: a test's module-level node list stays as written when a test changes a node's status
        nodes = nodes or [FakeNode("node-1", "10.30.1.10:2375")]
        self.nodes: dict[str, FakeNode] = {n.name: replace(n, labels=dict(n.labels)) for n in nodes}
        self.containers: dict[str, FakeContainer] = {}
        self.created: list[str] = []
        self.started: list[str] = []
        self.stopped: list[tuple[str, int]] = []  # (id, timeout)
        self.removed: list[str] = []
        self.renamed: list[tuple[str, str]] = []  # (id, new name)
        self._failures: list[_Failure] = []
        self.networks: list[dict[str, Any]] = []  # what GET /networks answers: {"Name", "Scope", "Driver"}
        self._ids = itertools.count(1)

    @property
    def docker_host(self) -> str:
        """The value for DOCKER_HOST."""
        return self.url.replace("http://", "tcp://")

    # -- test controls ----------------------------------------------------------------------------

    def add_node(self, node: FakeNode) -> None:
        with self.lock:
            self.nodes[node.name] = node

    def set_node_status(self, name: str, status: str) -> None:
        """Healthy, Unhealthy or Pending; containers on a node that is not healthy vanish from plain
        listings and inspect answers 500, as with Swarm."""
        with self.lock:
            self.nodes[name].status = status

    def remove_node(self, name: str) -> None:
        """The node leaves the cluster with its containers (what Swarm shows once discovery drops it)."""
        with self.lock:
            del self.nodes[name]
            for cid in [c.id for c in self.containers.values() if c.node == name]:
                del self.containers[cid]

    def add_container(self, name: str, *, node: str | None = None, **fields: Any) -> FakeContainer:
        """A container that already exists (FakeContainer's fields as keywords)."""
        with self.lock:
            container = FakeContainer(self._new_id(), name, node or next(iter(self.nodes)), **fields)
            if self.swarm:
                container.labels.setdefault("com.docker.swarm.id", container.id[-32:])
            self.containers[container.id] = container
            return container

    def container(self, name_or_id: str) -> FakeContainer:
        with self.lock:
            found = self._find(name_or_id)
            if found is None:
                raise KeyError(name_or_id)
            return found

    def set_state(self, name_or_id: str, state: str) -> None:
        with self.lock:
            self.container(name_or_id).state = state

    def set_health(self, name_or_id: str, health: str | None) -> None:
        with self.lock:
            self.container(name_or_id).health = health

    def fail(
        self, method: str, path_pattern: str, status: int = 500, *, message: str = "", times: int | None = 1
    ) -> None:
        """The next `times` `method` calls whose path (without /vX.Y) matches `path_pattern` answer `status`."""
        with self.lock:
            self._failures.append(
                _Failure(method, re.compile(path_pattern), status, message or "scripted failure", times)
            )

    # -- helpers ----------------------------------------------------------------------------------

    def _new_id(self) -> str:
        return f"{next(self._ids):012x}".rjust(64, "c")

    def _find(self, name_or_id: str) -> FakeContainer | None:
        key = name_or_id.lstrip("/")
        for c in self.containers.values():
            if key in (c.id, c.id[:12]) or key == c.name or key == f"{c.node}/{c.name}":
                return c
        matches = [c for c in self.containers.values() if c.id.startswith(key)]
        return matches[0] if len(matches) == 1 else None

    def _healthy(self, container: FakeContainer) -> bool:
        node = self.nodes.get(container.node)
        return node is not None and node.status == "Healthy"

    def _scripted(self, request: Request, path: str) -> Reply | None:
        for failure in self._failures:
            if failure.method == request.method and failure.pattern.search(path) and failure.times != 0:
                if failure.times is not None:
                    failure.times -= 1
                return Reply.json({"message": failure.message}, failure.status)
        return None

    # -- API --------------------------------------------------------------------------------------

    def handle(self, request: Request) -> Reply:
        path = _VERSION.sub("", request.path)
        scripted = self._scripted(request, path)
        if scripted is not None:
            return scripted
        if path == "/_ping":
            return Reply.text("OK")
        if path == "/info" and request.method == "GET":
            return Reply.json(self._info())
        if path == "/containers/json" and request.method == "GET":
            return Reply.json(self._list(request.query))
        if path == "/networks" and request.method == "GET":
            return Reply.json(self.networks)
        if path == "/containers/create" and request.method == "POST":
            return self._create(request.json() or {}, request.query.get("name", ""))
        match = re.fullmatch(r"/containers/(?P<name>[^/]+)(?P<rest>/json|/start|/stop|/rename)?", path)
        if match is None:
            return Reply.json({"message": f"page not found: {request.method} {path}"}, 404)
        container = self._find(match["name"])
        if container is None:
            return Reply.json({"message": f"No such container: {match['name']}"}, 404)
        action = (request.method, match["rest"] or "")
        if action == ("GET", "/json"):
            if self.swarm and not self._healthy(container):
                return Reply.json({"message": f"Container {container.name} running on unhealthy node"}, 500)
            return Reply.json(self._inspect(container))
        if action == ("POST", "/start"):
            return self._start(container)
        if action == ("POST", "/stop"):
            return self._stop(container, int(request.query.get("t", "10")))
        if action == ("POST", "/rename"):
            return self._rename(container, request.query.get("name", ""))
        if action == ("DELETE", ""):
            return self._remove(container, request.query.get("force") in ("1", "true"))
        return Reply.json({"message": f"not faked: {request.method} {path}"}, 404)

    def _info(self) -> dict[str, Any]:
        running = sum(c.running for c in self.containers.values())
        base = {
            "Containers": len(self.containers),
            "ContainersRunning": running,
            "ContainersStopped": len(self.containers) - running,
            "NCPU": sum(n.cpus for n in self.nodes.values()),
            "MemTotal": sum(n.memory for n in self.nodes.values()),
        }
        if not self.swarm:
            node = next(iter(self.nodes.values()))
            labels = [f"{k}={v}" for k, v in sorted(node.labels.items())]
            return {**base, "Name": node.name, "Labels": labels, "ServerVersion": "19.03.15"}
        status = [["Role", self.role]] + ([["Primary", self.primary]] if self.role == "replica" else [])
        status += [
            ["Strategy", "spread"],
            ["Filters", "health, port, containerslots, dependency, affinity, constraint, whitelist"],
        ]
        status.append(["Nodes", str(len(self.nodes))])
        for node in sorted(self.nodes.values(), key=lambda n: n.name):
            mine = [c for c in self.containers.values() if c.node == node.name]
            used_cpus, used_memory = sum(c.cpus for c in mine), sum(c.memory for c in mine)
            up = sum(c.running for c in mine)
            containers = (
                f"{len(mine)} ({up} Running, 0 Paused, {len(mine) - up} Stopped)"
                if node.status == "Healthy"
                else str(len(mine))
            )
            status += [
                [f" {node.name}", node.addr],
                ["  └ ID", node.id],
                ["  └ Status", node.status],
                ["  └ Containers", containers],
                ["  └ Reserved CPUs", f"{used_cpus} / {node.cpus}"],
                ["  └ Reserved Memory", f"{_size(used_memory)} / {_size(node.memory)}"],
                ["  └ Labels", ", ".join(f"{k}={v}" for k, v in sorted(node.labels.items()))],
                ["  └ UpdatedAt", _rfc3339(time.time()).split(".")[0] + "Z"],
                ["  └ ServerVersion", "19.03.15"],
            ]
        return {**base, "ServerVersion": "swarm/1.2.9", "SystemStatus": status}

    def _listed_name(self, container: FakeContainer) -> str:
        return f"/{container.node}/{container.name}" if self.swarm else f"/{container.name}"

    def _status_text(self, c: FakeContainer) -> str:
        if self.swarm and not self._healthy(c):
            return "Host Down"
        if c.running:
            return "Up 1 minute" + (f" ({c.health})" if c.health else "")
        return "Exited (0) 1 minute ago"

    def _summary(self, c: FakeContainer) -> dict[str, Any]:
        return {
            "Id": c.id,
            "Names": [self._listed_name(c)],
            "Image": c.image,
            "Command": "",
            "Created": int(c.created),
            "State": c.state,
            "Status": self._status_text(c),
            "Labels": dict(c.labels),
            "Ports": [],
            "HostConfig": {"NetworkMode": c.config.get("HostConfig", {}).get("NetworkMode", "default")},
        }

    def _list(self, query: dict[str, str]) -> list[dict[str, Any]]:
        filters: dict[str, list[str]] = json.loads(query.get("filters") or "{}")
        every = query.get("all") in ("1", "true") or "exited" in filters.get("status", [])
        out = []
        for c in sorted(self.containers.values(), key=lambda c: -c.created):
            if not every and (not c.running or (self.swarm and not self._healthy(c))):
                continue
            if _matches(c, filters, self._listed_name(c)):
                out.append(self._summary(c))
        return out

    def _inspect(self, c: FakeContainer) -> dict[str, Any]:
        config = c.config.get("Config") or {
            k: v for k, v in c.config.items() if k not in ("HostConfig", "NetworkingConfig")
        }
        host_config = {"Memory": c.memory, "CpuShares": c.cpus, **c.config.get("HostConfig", {})}
        state: dict[str, Any] = {
            "Status": c.state,
            "Running": c.running,
            "Paused": False,
            "Restarting": False,
            "ExitCode": 0,
            "StartedAt": _rfc3339(c.created),
        }
        if c.health is not None:
            state["Health"] = {"Status": c.health, "FailingStreak": 0, "Log": []}
        out: dict[str, Any] = {
            "Id": c.id,
            "Name": f"/{c.name}",
            "Created": _rfc3339(c.created),
            "Image": c.image,
            "State": state,
            "Config": {**config, "Image": c.image, "Env": list(c.env), "Labels": dict(c.labels)},
            "HostConfig": host_config,
        }
        if self.swarm:
            node = self.nodes[c.node]
            out["Node"] = {
                "ID": node.id,
                "IP": node.addr.split(":")[0],
                "Addr": node.addr,
                "Name": node.name,
                "Cpus": node.cpus,
                "Memory": node.memory,
                "Labels": dict(node.labels),
            }
        return out

    def _create(self, body: dict[str, Any], name: str) -> Reply:
        if name and any(c.name == name for c in self.containers.values()):
            message = f"Conflict: The name {name} is already assigned."
            return Reply.json({"message": message}, 409)
        labels = dict(body.get("Labels") or {})
        env = []
        for entry in body.get("Env") or []:
            key, sep, value = entry.partition(":")
            if self.swarm and key in _SWARM_ENV and sep and "=" not in key:
                label = f"com.docker.swarm.{_SWARM_ENV[key]}"
                labels[label] = json.dumps([*json.loads(labels.get(label, "[]")), value])
            else:
                env.append(entry)
        host = body.get("HostConfig") or {}
        memory, cpus = int(host.get("Memory") or 0), int(host.get("CpuShares") or 0)
        node = self._schedule(json.loads(labels.get("com.docker.swarm.constraints", "[]")), memory, cpus)
        if node is None:
            return Reply.json({"message": "Unable to find a node that satisfies the constraints / resources"}, 500)
        cid = self._new_id()
        if self.swarm:
            labels.setdefault("com.docker.swarm.id", cid[-32:])
        self.containers[cid] = FakeContainer(
            cid,
            name or f"auto_{cid[:6]}",
            node,
            str(body.get("Image", "")),
            env,
            labels,
            "created",
            time.time(),
            None,
            memory,
            cpus,
            body,
        )
        self.created.append(cid)
        return Reply.json({"Id": cid, "Warnings": None}, 201)

    def _schedule(self, constraints: list[str], memory: int, cpus: int) -> str | None:
        """Soft (`==~`) constraints first, then without them, as scheduler.go SelectNodesForContainer."""
        hard = [c for c in constraints if not _soft(c)]
        softened = [c.replace("=~", "=", 1) for c in constraints if _soft(c)]
        return self._place(hard + softened, memory, cpus) or self._place(hard, memory, cpus)

    def _place(self, constraints: list[str], memory: int, cpus: int) -> str | None:
        candidates = []
        for node in self.nodes.values():
            if node.status != "Healthy" or not all(_constraint_holds(node, expr) for expr in constraints):
                continue
            mine = [c for c in self.containers.values() if c.node == node.name]
            if sum(c.memory for c in mine) + memory > node.memory or sum(c.cpus for c in mine) + cpus > node.cpus:
                continue
            candidates.append((len(mine), node.name))
        return min(candidates)[1] if candidates else None

    def _start(self, c: FakeContainer) -> Reply:
        if c.running:
            return Reply(304)
        c.state = "running"
        if "Healthcheck" in c.config or c.health is not None:
            c.health = "healthy" if self.auto_healthy else "starting"
        self.started.append(c.id)
        return Reply(204)

    def _stop(self, c: FakeContainer, timeout: int) -> Reply:
        if not c.running:
            return Reply(304)
        c.state = "exited"
        self.stopped.append((c.id, timeout))
        return Reply(204)

    def _rename(self, c: FakeContainer, new_name: str) -> Reply:
        if any(other.name == new_name for other in self.containers.values() if other is not c):
            return Reply.json({"message": f"Conflict: The name {new_name} is already assigned."}, 409)
        c.name = new_name
        self.renamed.append((c.id, new_name))
        return Reply(204)

    def _remove(self, c: FakeContainer, force: bool) -> Reply:
        if c.running and not force:
            message = f"You cannot remove a running container {c.id}. Stop the container before attempting removal"
            return Reply.json({"message": message}, 409)
        del self.containers[c.id]
        self.removed.append(c.id)
        return Reply(204)


def _soft(expression: str) -> bool:
    return "==~" in expression or "!=~" in expression


def _constraint_holds(node: FakeNode, expression: str) -> bool:
    match = _EXPR.fullmatch(expression)
    if match is None:
        return False
    key, value = match["key"].strip(), match["value"].strip()
    actual = [node.name, node.id] if key == "node" else [node.labels.get(key)]
    equal = any(a is not None and re.fullmatch(value.replace("*", ".*"), a) is not None for a in actual)
    return equal if match["op"] == "==" else not equal


def _matches(c: FakeContainer, filters: dict[str, list[str]], listed_name: str) -> bool:
    for label in filters.get("label", []):
        key, sep, value = label.partition("=")
        if key not in c.labels or (sep and c.labels[key] != value):
            return False
    checks = {
        "status": c.state,
        "id": c.id,
        "node": c.node,
        "health": c.health or "none",
    }
    for name, actual in checks.items():
        wanted = filters.get(name)
        if wanted and not any(actual == w or (name == "id" and actual.startswith(w)) for w in wanted):
            return False
    names = filters.get("name")
    return not names or any(re.search(n, listed_name.lstrip("/")) for n in names)
