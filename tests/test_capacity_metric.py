"""The capacity-reservation metric's value, computed from what Swarm reserves."""

from __future__ import annotations

from node_agents.capacity import Group, metric_data, reservation_percent
from node_agents.rebalance_plan import Container, Node

GIB = 1 << 30
WEB = Group("web", "web", target_percent=50.0)


def node(i: int, role: str = "web", **changes: object) -> Node:
    fields: dict[str, object] = {"cpus": 2, "memory": 4 * GIB, "healthy": True, **changes}
    return Node(id=f"ID{i}", name=f"n{i}", labels={"docker.role": role}, age=0.0, **fields)  # type: ignore[arg-type]


def container(k: int, on: int, cpus: int = 0, memory: int = 0, scheduled: bool = True) -> Container:
    return Container(id=f"c{k}", name=f"c{k}", node=f"ID{on}", cpus=cpus, memory=memory, scheduled=scheduled)


def test_the_larger_of_cpu_and_memory_reservations_over_healthy_nodes_of_the_role() -> None:
    nodes = [node(0), node(1), node(2, healthy=False), node(3, role="db")]
    containers = [container(0, 0, cpus=1, memory=1 * GIB), container(1, 1, memory=1 * GIB), container(2, 3, cpus=2)]
    # CPU 1 of 4 = 25 %, memory 2 of 8 GiB = 25 %; the db node and the unhealthy one do not count.
    assert reservation_percent(WEB, nodes, containers) == 25.0
    containers.append(container(3, 1, memory=GIB, scheduled=False))  # what Swarm did not schedule reserves too
    assert reservation_percent(WEB, nodes, containers) == 37.5


def test_a_container_that_fits_nowhere_asks_for_one_node_more() -> None:
    nodes = [node(0), node(1)]
    # 3 GiB reserved on each node: 75 % of memory, and a second 3 GiB container fits on neither.
    containers = [container(0, 0, memory=3 * GIB), container(1, 1, memory=3 * GIB)]
    assert reservation_percent(Group("web", "web", 80.0), nodes, containers) == 120.0  # 80 x 3 / 2
    # Below what the reservation says already, the reservation stands.
    assert reservation_percent(Group("web", "web", 40.0), nodes, containers) == 75.0
    # Containers without -m/-c always fit: the metric is the reservation alone.
    assert reservation_percent(WEB, nodes, [container(0, 0), container(1, 1)]) == 0.0


def test_groups_without_healthy_nodes_publish_nothing() -> None:
    assert reservation_percent(WEB, [node(0, healthy=False)], []) is None
    data = metric_data([WEB, Group("db", "db", 50.0)], [node(0), node(1, role="db")], [container(0, 0, cpus=1)])
    assert data == [
        {
            "MetricName": "CapacityReservation",
            "Dimensions": [{"Name": "NodeGroup", "Value": "web"}],
            "Value": 50.0,
            "Unit": "Percent",
        },
        {
            "MetricName": "CapacityReservation",
            "Dimensions": [{"Name": "NodeGroup", "Value": "db"}],
            "Value": 0.0,
            "Unit": "Percent",
        },
    ]
