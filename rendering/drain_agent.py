"""The drain agent's RancherOS service on a Swarm node (the program is node_agents/drain.py).

It needs the node's user Docker socket (to stop the Swarm agent and the workload), a writable host
directory for its state (so a restarted container resumes a drain instead of starting over), and, on
managers, the local `swarm manage` API on loopback, for witnessing other nodes' drains.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from node_agents.drain import STATE_DIR
from rendering.agents import AgentArchive, agent_service

SERVICE = "drain"
MODULE = "drain"
DOCKER_SOCKET = "/var/run/docker.sock"


@dataclass(frozen=True)
class DrainSpec:
    autoscaling_group: str  # the node's own group, the only one its role may complete actions of
    hook: str  # the group's termination lifecycle hook
    window_seconds: int


def drain_service(
    spec: DrainSpec,
    archive: AgentArchive,
    consul: str,
    swarm_agent: str,
    swarm_manager: str | None,
    managers: int,
    manager_port: int,
) -> dict[str, Any]:
    """User-data of the service; `swarm_manager` and `managers` (the group's size) only on manager groups."""
    environment = {
        "DRAIN_GROUP": spec.autoscaling_group,
        "DRAIN_HOOK": spec.hook,
        "DRAIN_WINDOW_SECONDS": str(spec.window_seconds),
        "CONSUL_HTTP_ADDR": consul,
        "SWARM_AGENT_CONTAINER": swarm_agent,
    }
    if swarm_manager is not None:
        environment |= {
            "SWARM_MANAGER_CONTAINER": swarm_manager,
            "SWARM_MANAGERS": str(managers),
            "SWARM_HOST": f"tcp://127.0.0.1:{manager_port}",
        }
    volumes = [f"{DOCKER_SOCKET}:{DOCKER_SOCKET}", f"{STATE_DIR}:{STATE_DIR}"]
    return agent_service(SERVICE, MODULE, archive, environment, volumes=volumes)
