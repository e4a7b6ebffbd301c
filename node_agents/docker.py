"""The Docker Engine API calls the agents make, against a node's own engine (unix socket) or the classic
Swarm 1.2.9 manager (tcp://<manager>:4000), which serves the same API for the whole cluster.

Swarm differences that matter (docker-archive/classicswarm v1.2.9):
- listed names are `/<node>/<name>` (api/handlers.go getContainersJSON); inspect keeps the engine's
  `/<name>` and adds `Node` {ID, IP, Addr, Name, Cpus, Memory, Labels};
- placement is asked with env `constraint:node==<name>` / `affinity:...` / `reschedule:on-node-failure`
  at create; Swarm moves them out of Env into the JSON-list labels `com.docker.swarm.constraints`,
  `com.docker.swarm.affinities`, `com.docker.swarm.reschedule-policies` (cluster/config.go), and labels
  every container with its own `com.docker.swarm.id`;
- `/info` reports the cluster in `SystemStatus` pairs (cli/manage.go, cluster/swarm/cluster.go Info):
  Role (primary or replica, with the Primary's address), Strategy, Filters, Nodes, then per node
  ` <name>` = `<addr>` followed by `  └ ID`, `  └ Status`, `  └ Containers`, `  └ Reserved CPUs`
  (`used / total`), `  └ Reserved Memory` (`1.5 GiB / 7.5 GiB`), `  └ Labels` (`k=v, k=v`),
  `  └ Error`, `  └ UpdatedAt`, `  └ ServerVersion`. A replica answers /info itself, every other call
  is proxied to the primary (api/replica.go).
"""

from __future__ import annotations

import json
import os
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from node_agents.http import HttpClient, HttpStatusError

# Engine 19.03 (RancherOS 1.5.8) accepts API 1.12-1.40 and Swarm 1.2.9 speaks up to 1.30: 1.24 is in both.
API = "/v1.24"
DEFAULT_HOST = "unix:///var/run/docker.sock"
TIMEOUT = 30.0
SWARM_LABEL_PREFIX = "com.docker.swarm."
SWARM_ID_LABEL = SWARM_LABEL_PREFIX + "id"  # classic Swarm's id of a container it scheduled
DEFAULT_STOP_TIMEOUT = 10  # Docker's own default for `docker stop`
_UNITS = {unit: 1 << (10 * n) for n, unit in enumerate(("B", "KiB", "MiB", "GiB", "TiB", "PiB"))}


@dataclass(frozen=True)
class SwarmNode:
    name: str
    addr: str  # engine address, ip:2375
    id: str = ""
    status: str = ""  # Healthy, Unhealthy, Pending
    containers: int = 0
    reserved_cpus: tuple[int, int] = (0, 0)  # (reserved, total)
    reserved_memory: tuple[int, int] = (0, 0)  # bytes (reserved, total); Swarm prints 4 significant digits
    labels: dict[str, str] = field(default_factory=dict)
    error: str = ""


@dataclass(frozen=True)
class SwarmInfo:
    role: str  # primary or replica
    primary: str  # the primary's address as a replica reports it; "" on the primary
    nodes: list[SwarmNode]


def _bytes(text: str) -> int:
    number, _, unit = text.strip().partition(" ")
    return round(float(number) * _UNITS.get(unit, 1))


def _pair(text: str, parse: Any) -> tuple[int, int]:
    used, _, total = text.partition(" / ")
    return parse(used), parse(total)


def _labels(text: str) -> dict[str, str]:
    pairs = (item.partition("=") for item in text.split(", ") if item)
    return {key: value for key, _, value in pairs}


def parse_swarm_info(info: dict[str, Any]) -> SwarmInfo:
    """The cluster as classic Swarm's `/info` describes it in `SystemStatus`."""
    status: list[list[str]] = info.get("SystemStatus") or []
    top = {key: value for key, value in status if not key.startswith(" ")}
    nodes: list[dict[str, Any]] = []
    for key, value in status:
        if key.startswith(" ") and not key.startswith("  "):
            nodes.append({"name": key.strip(), "addr": value})
        elif key.startswith("  └ ") and nodes:
            nodes[-1][key[len("  └ ") :]] = value
    return SwarmInfo(
        role=top.get("Role", ""),
        primary=top.get("Primary", ""),
        nodes=[
            SwarmNode(
                name=node["name"],
                addr=node["addr"],
                id=node.get("ID", ""),
                status=node.get("Status", ""),
                containers=int(node.get("Containers", "0").split(" ")[0]),
                reserved_cpus=_pair(node.get("Reserved CPUs", "0 / 0"), int),
                reserved_memory=_pair(node.get("Reserved Memory", "0 B / 0 B"), _bytes),
                labels=_labels(node.get("Labels", "")),
                error=node.get("Error", ""),
            )
            for node in nodes
        ],
    )


def stop_timeout(inspected: Mapping[str, Any]) -> int:
    """The seconds `docker stop` waits for this container (its own StopTimeout, else Docker's default)."""
    return int((inspected.get("Config") or {}).get("StopTimeout") or DEFAULT_STOP_TIMEOUT)


def split_swarm_name(listed: str) -> tuple[str, str]:
    """`/<node>/<name>` (a name Swarm lists) -> (node, name); an engine's `/<name>` -> ("", name)."""
    node, _, name = listed.lstrip("/").rpartition("/")
    return node, name


def swarm_list_label(container: dict[str, Any], kind: str) -> list[str]:
    """Swarm's JSON-list label `com.docker.swarm.<kind>` (constraints, affinities, reschedule-policies)."""
    raw = (container.get("Labels") or container.get("Config", {}).get("Labels") or {}).get(SWARM_LABEL_PREFIX + kind)
    return [str(item) for item in json.loads(raw)] if raw else []


class Docker:
    """`host` as in DOCKER_HOST (`unix:///var/run/docker.sock`, `tcp://10.30.0.5:4000`); default DOCKER_HOST,
    else the local socket."""

    def __init__(self, host: str | None = None, *, timeout: float = TIMEOUT) -> None:
        self.host = host or os.environ.get("DOCKER_HOST") or DEFAULT_HOST
        self.timeout = timeout
        self._http = HttpClient(self.host, timeout=timeout)

    @staticmethod
    def _id(name_or_id: str) -> str:
        return urllib.parse.quote(name_or_id, safe="")

    def info(self) -> dict[str, Any]:
        return dict(self._http.get_json(f"{API}/info"))

    def swarm_info(self) -> SwarmInfo:
        return parse_swarm_info(self.info())

    def containers(self, *, all: bool = False, filters: dict[str, list[str]] | None = None) -> list[dict[str, Any]]:
        """`GET /containers/json`: running ones, or every one with `all`; `filters` as the API takes them,
        e.g. {"label": ["reschedule=on"], "status": ["running"], "node": ["web-1"]}."""
        query = {"all": "1"} if all else {}
        if filters:
            query["filters"] = json.dumps(filters)
        return list(self._http.get_json(f"{API}/containers/json", query=query))

    def networks(self) -> list[dict[str, Any]]:
        """`GET /networks`: Name, Scope (local, global, swarm), Driver, ..."""
        return list(self._http.get_json(f"{API}/networks"))

    def inspect(self, name_or_id: str) -> dict[str, Any] | None:
        """The container's full description; None when there is no such container."""
        response = self._http.request("GET", f"{API}/containers/{self._id(name_or_id)}/json", ok=(404,))
        return None if response.status == 404 else dict(response.json())

    def create(self, config: dict[str, Any], *, name: str | None = None) -> str:
        """Creates a container from an API config (Image, Env, Labels, HostConfig, ...); returns its id."""
        query = {"name": name} if name else None
        return str(self._http.send_json("POST", f"{API}/containers/create", config, query=query)["Id"])

    def start(self, name_or_id: str) -> None:
        """Starts it (already running is fine: 304)."""
        self._http.request("POST", f"{API}/containers/{self._id(name_or_id)}/start", ok=(304,))

    def stop(self, name_or_id: str, *, timeout: int = DEFAULT_STOP_TIMEOUT) -> None:
        """SIGTERM, then SIGKILL after `timeout` seconds (already stopped is fine: 304)."""
        client = HttpClient(self.host, timeout=self.timeout + timeout)
        client.request("POST", f"{API}/containers/{self._id(name_or_id)}/stop", query={"t": str(timeout)}, ok=(304,))

    def remove(self, name_or_id: str, *, force: bool = False, volumes: bool = False) -> None:
        """Removes it; gone already is fine (404)."""
        query = {"force": "1" if force else "0", "v": "1" if volumes else "0"}
        self._http.request("DELETE", f"{API}/containers/{self._id(name_or_id)}", query=query, ok=(404,))

    def rename(self, name_or_id: str, new_name: str) -> None:
        self._http.request("POST", f"{API}/containers/{self._id(name_or_id)}/rename", query={"name": new_name})

    def ping(self) -> bool:
        try:
            return self._http.request("GET", "/_ping").body.strip() == b"OK"
        except HttpStatusError:
            return False
