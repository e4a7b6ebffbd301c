"""The capacity-reservation metric each autoscaled group target-tracks beside CPU.

ECS capacity providers scale on how much of a group's capacity the scheduler has promised away, not on
how busy it is. Classic Swarm promises what containers declare (`-c` CPUs, `-m` memory; reservations of
stopped containers included), so the metric of a group is the larger of its reserved-CPU and reserved-
memory percentages over its healthy nodes. When some container of the group's role could not be placed
again on any of them (a replica more, or a reschedule during a drain), the metric is raised to the value at
which target tracking asks for exactly one node more: target x (N + 1) / N.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from node_agents.rebalance_plan import Container, Node

METRIC_NAME = "CapacityReservation"
DIMENSION = "NodeGroup"


def namespace(environment: str) -> str:
    """The cluster's own CloudWatch namespace: the managers' PutMetricData right is limited to it."""
    return f"SwarmCluster/{environment}"


@dataclass(frozen=True)
class Group:
    name: str
    role: str
    target_percent: float


def _reserved(node: Node, containers: Sequence[Container]) -> tuple[int, int]:
    here = [c for c in containers if c.node == node.id]
    return sum(c.cpus for c in here), sum(c.memory for c in here)


def _fits_somewhere(c: Container, free: Sequence[tuple[int, int]]) -> bool:
    # Swarm weighs a resource only when the container asks for it (strategy/weighted_node.go).
    return any((c.cpus == 0 or c.cpus <= cpus) and (c.memory == 0 or c.memory <= memory) for cpus, memory in free)


def reservation_percent(group: Group, nodes: Iterable[Node], containers: Iterable[Container]) -> float | None:
    """The metric for one group, or None when it has no healthy node (nothing to measure, and target
    tracking treats missing data as no reason to act)."""
    mine = [n for n in nodes if n.healthy and n.role == group.role]
    every = list(containers)
    if not mine:
        return None
    reserved = [_reserved(n, every) for n in mine]
    shares = [
        sum(r[k] for r in reserved) / total
        for k, total in enumerate((sum(n.cpus for n in mine), sum(n.memory for n in mine)))
        if total > 0
    ]
    percent = 100.0 * max(shares, default=0.0)
    free = [(n.cpus - r[0], n.memory - r[1]) for n, r in zip(mine, reserved, strict=True)]
    ids = {n.id for n in mine}
    stranded = [c for c in every if c.node in ids and c.scheduled and not _fits_somewhere(c, free)]
    if stranded:
        percent = max(percent, group.target_percent * (len(mine) + 1) / len(mine))
    return round(percent, 2)


def metric_data(
    groups: Iterable[Group], nodes: Sequence[Node], containers: Sequence[Container]
) -> list[dict[str, object]]:
    """PutMetricData's MetricData entries, one per group that has a value."""
    data: list[dict[str, object]] = []
    for group in groups:
        value = reservation_percent(group, nodes, containers)
        if value is not None:
            data.append(
                {
                    "MetricName": METRIC_NAME,
                    "Dimensions": [{"Name": DIMENSION, "Value": group.name}],
                    "Value": value,
                    "Unit": "Percent",
                }
            )
    return data
