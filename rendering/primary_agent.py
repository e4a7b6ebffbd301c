"""The primary-agent's RancherOS service on the Swarm managers (the program is node_agents/primary.py).

Every manager runs it; only the one whose `swarm manage` is primary acts. It reads the cluster through the
local manager on loopback, the drain signal from Consul, and puts the capacity metric into CloudWatch with
the managers' role. Its settings are one JSON document in the service's environment: the autoscaled
groups it measures and the rebalancing it does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from node_agents.primary import SETTINGS_VARIABLE
from rendering.agents import AgentArchive, agent_service

SERVICE = "primary-agent"
MODULE = "primary"


@dataclass(frozen=True)
class MeasuredGroup:
    name: str
    role: str
    target_percent: int  # the group's reservation target: the metric asks for one node more above it


@dataclass(frozen=True)
class PrimaryAgentSpec:
    environment: str  # names the CloudWatch namespace
    groups: Sequence[MeasuredGroup]  # the autoscaled groups
    rebalance_roles: Sequence[str]
    rebalancer: Mapping[str, int]  # swarm.rebalancer, by its stack-file key names


def settings(spec: PrimaryAgentSpec) -> str:
    """The document node_agents.primary.Settings.parse reads."""
    document = {
        "environment": spec.environment,
        "groups": [{"name": g.name, "role": g.role, "targetPercent": g.target_percent} for g in spec.groups],
        "rebalance": {"roles": sorted(set(spec.rebalance_roles)), **spec.rebalancer},
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


def primary_agent_service(
    spec: PrimaryAgentSpec, archive: AgentArchive, consul: str, manager_port: int
) -> dict[str, Any]:
    """User-data (to merge into a manager's) for the service; its code comes from the agents' archive."""
    environment = {
        SETTINGS_VARIABLE: settings(spec),
        "SWARM_HOST": f"tcp://127.0.0.1:{manager_port}",
        "CONSUL_HTTP_ADDR": consul,
    }
    return agent_service(SERVICE, MODULE, archive, environment)
