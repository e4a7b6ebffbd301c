"""node_agents.docker against tests.fakes.docker.FakeDocker (classic Swarm 1.2.9 and engine modes)."""

from __future__ import annotations

import pytest

from node_agents.docker import Docker, parse_swarm_info, split_swarm_name, swarm_list_label
from node_agents.http import HttpStatusError
from tests.fakes.docker import GIB, FakeDocker, FakeNode

NODES = [
    FakeNode("web-1", "10.30.1.10:2375", labels={"docker.role": "web"}),
    FakeNode("web-2", "10.30.1.11:2375", labels={"docker.role": "web"}, memory=4 * GIB),
    FakeNode("db-1", "10.30.2.10:2375", labels={"docker.role": "db"}),
]


def test_swarm_info_lists_nodes_and_reservations() -> None:
    with FakeDocker(NODES) as fake:
        fake.add_container("a", node="web-1", memory=GIB + GIB // 2, cpus=1)
        info = Docker(fake.docker_host).swarm_info()
    assert info.role == "primary"
    web1 = next(node for node in info.nodes if node.name == "web-1")
    assert (web1.addr, web1.status, web1.containers) == ("10.30.1.10:2375", "Healthy", 1)
    assert web1.reserved_cpus == (1, 2) and web1.reserved_memory == (GIB + GIB // 2, 8 * GIB)
    assert web1.labels == {"docker.role": "web"}
    assert [node.name for node in info.nodes] == ["db-1", "web-1", "web-2"]


def test_parse_swarm_info_of_a_replica_as_swarm_prints_it() -> None:
    info = parse_swarm_info(
        {
            "SystemStatus": [
                ["Role", "replica"],
                ["Primary", "10.30.0.5:4000"],
                ["Strategy", "spread"],
                ["Nodes", "1"],
                [" node-a", "10.0.0.1:2375"],
                ["  └ ID", "ABCD"],
                ["  └ Status", "Unhealthy"],
                ["  └ Containers", "3"],
                ["  └ Reserved CPUs", "0 / 4"],
                ["  └ Reserved Memory", "512 MiB / 15.67 GiB"],
                ["  └ Labels", "executiondriver=, kernelversion=4.14.138-rancher, storagedriver=overlay2"],
                ["  └ Error", "cannot connect"],
            ]
        }
    )
    assert (info.role, info.primary) == ("replica", "10.30.0.5:4000")
    (node,) = info.nodes
    assert node.reserved_memory == (512 << 20, round(15.67 * GIB)) and node.containers == 3
    assert node.labels["kernelversion"] == "4.14.138-rancher" and node.error == "cannot connect"


def test_container_lifecycle_through_swarm() -> None:
    with FakeDocker(NODES) as fake:
        docker = Docker(fake.docker_host)
        old = fake.add_container("app", node="web-1", labels={"move": "yes"})
        cid = docker.create(
            {"Image": "app:1", "Env": ["A=1", "constraint:node==web-2", "reschedule:on-node-failure"], "Labels": {}},
            name="app-moving",
        )
        assert fake.container(cid).node == "web-2"
        docker.start(cid)
        docker.start(cid)  # already running: 304 is fine
        listed = docker.containers(filters={"label": ["move=yes"]})
        assert [split_swarm_name(c["Names"][0]) for c in listed] == [("web-1", "app")]
        inspected = docker.inspect(cid)
        assert inspected is not None and inspected["Node"]["Name"] == "web-2" and inspected["Config"]["Env"] == ["A=1"]
        assert swarm_list_label(inspected, "constraints") == ["node==web-2"]
        assert swarm_list_label(inspected, "reschedule-policies") == ["on-node-failure"]
        with pytest.raises(HttpStatusError) as raised:
            docker.remove(old.id)
        assert raised.value.status == 409
        docker.stop(old.id, timeout=30)
        docker.stop(old.id)
        docker.remove(old.id)
        docker.remove(old.id)  # gone already is fine
        docker.rename(cid, "app")
        assert docker.inspect("app") is not None and docker.inspect(old.id) is None
        assert fake.stopped == [(old.id, 30)] and fake.renamed == [(cid, "app")]
        with pytest.raises(HttpStatusError) as raised:
            docker.create({"Image": "app:1"}, name="app")
        assert raised.value.status == 409


def test_scheduling_respects_constraints_and_reservations() -> None:
    with FakeDocker(NODES) as fake:
        docker = Docker(fake.docker_host)
        db = docker.create({"Image": "pg", "Env": ["constraint:docker.role==db"]})
        assert fake.container(db).node == "db-1"
        big = docker.create({"Image": "x", "Env": ["constraint:docker.role==web"], "HostConfig": {"Memory": 6 * GIB}})
        assert fake.container(big).node == "web-1"
        with pytest.raises(HttpStatusError):
            docker.create({"Image": "x", "Env": ["constraint:docker.role==web"], "HostConfig": {"Memory": 5 * GIB}})


def test_unhealthy_node_hides_containers() -> None:
    with FakeDocker(NODES) as fake:
        docker = Docker(fake.docker_host)
        fake.add_container("a", node="web-2")
        fake.set_node_status("web-2", "Unhealthy")
        assert docker.containers() == []
        assert docker.containers(all=True)[0]["Status"] == "Host Down"


def test_engine_mode_names_and_scripted_failures() -> None:
    with FakeDocker([FakeNode("node-1", "10.0.0.1:2375", labels={"docker.role": "web"})], swarm=False) as fake:
        docker = Docker(fake.docker_host)
        fake.add_container("svc", health="healthy")
        assert docker.containers()[0]["Names"] == ["/svc"]
        assert docker.info()["Labels"] == ["docker.role=web"]
        assert docker.ping()
        fake.fail("POST", r"/containers/.*/stop", 500)
        with pytest.raises(HttpStatusError):
            docker.stop("svc")
        docker.stop("svc")
        assert fake.container("svc").state == "exited"
