"""node-bootstrap, executed: the rendered script under busybox sh in a network namespace "node" with real
(legacy) iptables, FakeImds reached at 169.254.169.254 through a second namespace "peer" (another host of
the VPC), and a third namespace "ctr": a container on the node's docker0 bridge.

    ctr 172.17.0.2 --docker0 172.17.0.1-- node --eth0 10.0.0.5 ---- 10.0.0.9 peer (169.254.169.254 -> FakeImds)

After node-bootstrap, the test adds what dockerd adds on start (FORWARD jumps to DOCKER-USER first, then
accepts docker0 traffic; masquerade), then probes TCP connections from the container and from the node.
"""

from __future__ import annotations

import ctypes
import errno
import os
import selectors
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from rendering.swarm_node import render_swarm_node
from tests.fakes.imds import FakeImds
from tests.sandbox import Sandbox, namespaces, require_sandbox, sh
from tests.test_rendering_swarm_node import spec

CLONE_NEWNET = 0x40000000
NODE_IP, PEER_IP, BRIDGE_IP, CONTAINER_IP = "10.0.0.5", "10.0.0.9", "172.17.0.1", "172.17.0.2"
IMDS = "169.254.169.254"
INSTANCE_ID, PRIVATE_IP = "i-0123456789abcdef0", "10.30.1.23"
HOSTNAME = f"staging-managers-{INSTANCE_ID}"
OPEN_PORT = 8080  # a port no rule concerns: containers keep reaching it
# The test's own iptables calls take the host's /run/xtables.lock, shared by every namespace and every process
# (another pytest worker, another checkout's run): without -w a held lock fails the call at once.
IPTABLES = "iptables-legacy -w"
# What dockerd 19.03 puts in place when it starts, after node-bootstrap (it keeps an existing DOCKER-USER).
DOCKERD_RULES = (
    "iptables -I FORWARD 1 -j DOCKER-USER",
    "iptables -A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
    "iptables -A FORWARD -i docker0 ! -o docker0 -j ACCEPT",
    "iptables -A FORWARD -i docker0 -o docker0 -j ACCEPT",
    f"iptables -t nat -A POSTROUTING -s {BRIDGE_IP}/16 ! -o docker0 -j MASQUERADE",
)
# A connection the rules allow completes within the connecting call on these veth links (the kernel answers
# the SYN in the sender's own softirq; under 3 ms measured on a loaded machine); a SYN a DROP rule ate never
# gets an answer.
PROBE_WAIT = 0.2
OPEN, DROPPED = "open", "dropped"


@dataclass
class Network:
    node: str
    peer: str
    ctr: str
    imds: FakeImds


@contextmanager
def inside(netns: str) -> Iterator[None]:
    """This thread in `netns` (sockets it creates stay there), then back where it was."""
    libc = ctypes.CDLL(None, use_errno=True)
    own, target = os.open("/proc/thread-self/ns/net", os.O_RDONLY), os.open(f"/run/netns/{netns}", os.O_RDONLY)
    try:
        assert libc.setns(target, CLONE_NEWNET) == 0, os.strerror(ctypes.get_errno())
        yield
    finally:
        assert libc.setns(own, CLONE_NEWNET) == 0, os.strerror(ctypes.get_errno())
        os.close(own)
        os.close(target)


def probe(netns: str, *targets: tuple[str, int]) -> dict[tuple[str, int], str]:
    """TCP connections from `netns` to every target at once: each OPEN, DROPPED (no answer within PROBE_WAIT)
    or the error that ended it (ECONNREFUSED...)."""
    results: dict[tuple[str, int], str] = {}
    sockets: list[socket.socket] = []
    try:
        with selectors.DefaultSelector() as pending:
            with inside(netns):
                for target in targets:
                    sock = socket.socket()
                    sockets.append(sock)
                    sock.setblocking(False)
                    error = sock.connect_ex(target)
                    if error == errno.EINPROGRESS:
                        pending.register(sock, selectors.EVENT_WRITE, target)
                    else:
                        results[target] = OPEN if error == 0 else errno.errorcode[error]
            deadline = time.monotonic() + PROBE_WAIT
            while pending.get_map() and (left := deadline - time.monotonic()) > 0:
                for key, _ in pending.select(left):
                    error = sockets[targets.index(key.data)].getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    results[key.data] = OPEN if error == 0 else errno.errorcode[error]
                    pending.unregister(key.fileobj)
    finally:
        for sock in sockets:
            sock.close()
    return {target: results.get(target, DROPPED) for target in targets}


def _wire(node: str, peer: str, ctr: str) -> None:
    sh(f"ip link add eth0 type veth peer name peer0 && ip link set peer0 netns {peer}", netns=node)
    sh(f"ip link add vethc type veth peer name ceth0 && ip link set ceth0 netns {ctr}", netns=node)
    sh(
        f"ip addr add {NODE_IP}/24 dev eth0 && ip link set eth0 up && ip route add {IMDS}/32 via {PEER_IP} && "
        f"ip link add docker0 type bridge && ip addr add {BRIDGE_IP}/16 dev docker0 && ip link set docker0 up && "
        "ip link set vethc master docker0 up && busybox sysctl -qw net.ipv4.ip_forward=1",
        netns=node,
    )
    sh(
        f"ip link set peer0 name eth0 && ip addr add {PEER_IP}/24 dev eth0 && ip link set eth0 up && "
        f"ip addr add {IMDS}/32 dev lo && busybox sysctl -qw net.ipv4.conf.all.route_localnet=1 && "
        "busybox sysctl -qw net.ipv4.conf.eth0.route_localnet=1",
        netns=peer,
    )
    sh(
        f"ip link set ceth0 name eth0 && ip addr add {CONTAINER_IP}/16 dev eth0 && ip link set eth0 up && "
        f"ip route add default via {BRIDGE_IP}",
        netns=ctr,
    )


@pytest.fixture(scope="module")
def network() -> Iterator[Network]:
    require_sandbox()
    with ExitStack() as stack:
        names = stack.enter_context(namespaces("node", "peer", "ctr"))
        node, peer, ctr = names["node"], names["peer"], names["ctr"]
        _wire(node, peer, ctr)
        with inside(peer):
            imds = stack.enter_context(FakeImds(instance_id=INSTANCE_ID, local_ipv4=PRIVATE_IP))
        port = imds.url.rsplit(":", 1)[1]
        sh(
            f"{IPTABLES} -t nat -A PREROUTING -d {IMDS}/32 -p tcp --dport 80 -j DNAT --to 127.0.0.1:{port}",
            netns=peer,
        )
        # Listening is enough: the kernel completes a handshake before anyone accepts it.
        for netns, ports in ((peer, (2375, 8500, OPEN_PORT)), (node, (2375, OPEN_PORT))):
            with inside(netns):
                for port in ports:
                    stack.enter_context(socket.create_server(("0.0.0.0", port)))
        yield Network(node, peer, ctr, imds)


def _bootstrap() -> str:
    document = yaml.safe_load(render_swarm_node(spec(swarm_manager=True, group="managers")))
    return next(f["content"] for f in document["write_files"] if f["path"] == "/usr/local/sbin/node-bootstrap")


def _filter_rules(netns: str) -> list[str]:
    return sh(f"{IPTABLES} -S", netns=netns).splitlines()


@pytest.fixture(scope="module")
def booted(network: Network, tmp_path_factory: pytest.TempPathFactory) -> tuple[Network, Sandbox]:
    """One boot of the node, then dockerd's own rules, as on a real node."""
    box = Sandbox(tmp_path_factory.mktemp("boot"))
    result = box.run(_bootstrap(), netns=network.node)
    assert result.returncode == 0, result.stderr
    for rule in DOCKERD_RULES:
        sh(rule.replace("iptables", IPTABLES, 1), netns=network.node)
    return network, box


def test_the_node_gets_its_name_and_its_validated_address(booted: tuple[Network, Sandbox]) -> None:
    network, box = booted
    sets = box.calls("ros")
    assert f"config set rancher.environment.swarm-agent/SWARM_ADVERTISE {PRIVATE_IP}:2375" in sets
    assert f"config set rancher.environment.swarm-manager/SWARM_ADVERTISE {PRIVATE_IP}:4000" in sets
    assert f"config set rancher.environment.AWS_LOCAL_IPV4 {PRIVATE_IP}" in sets
    assert f"config set hostname {HOSTNAME}" in sets
    assert box.read("hosts").endswith(f"127.0.1.1 {HOSTNAME}\n")
    assert box.read("run-after/swarm-cluster/identity") == f"{HOSTNAME} {PRIVATE_IP}\n"
    assert f"node-bootstrap: {HOSTNAME} ({PRIVATE_IP}, eu-west-1a, m5.large)" in box.read("console")
    assert {r.path for r in network.imds.requests} >= {
        f"/latest/meta-data/{item}"
        for item in ("instance-id", "local-ipv4", "placement/availability-zone", "placement/region", "instance-type")
    }


def test_containers_cannot_reach_metadata_nor_control_ports_and_other_traffic_passes(
    booted: tuple[Network, Sandbox],
) -> None:
    network, _ = booted
    seen = len(network.imds.requests)
    assert probe(
        network.ctr,
        (IMDS, 80),
        (PEER_IP, 2375),
        (PEER_IP, 8500),
        (BRIDGE_IP, 2375),
        (PEER_IP, OPEN_PORT),
        (BRIDGE_IP, OPEN_PORT),
    ) == {
        (IMDS, 80): DROPPED,
        (PEER_IP, 2375): DROPPED,  # other hosts' control ports
        (PEER_IP, 8500): DROPPED,
        (BRIDGE_IP, 2375): DROPPED,  # its own host's engine
        (PEER_IP, OPEN_PORT): OPEN,
        (BRIDGE_IP, OPEN_PORT): OPEN,
    }
    assert len(network.imds.requests) == seen, "the container's request never reached the metadata service"
    # Host-network services (engine, swarm, consul) are not containers: untouched.
    assert probe(network.node, (PEER_IP, 2375), (IMDS, 80)) == {(PEER_IP, 2375): OPEN, (IMDS, 80): OPEN}


def test_a_second_run_changes_no_rule(booted: tuple[Network, Sandbox], tmp_path: Path) -> None:
    network, _ = booted
    before = _filter_rules(network.node)
    again = Sandbox(tmp_path)
    assert again.run(_bootstrap(), netns=network.node).returncode == 0
    assert _filter_rules(network.node) == before
    assert probe(network.ctr, (IMDS, 80)) == {(IMDS, 80): DROPPED}


def test_unreachable_metadata_fails_safe(tmp_path: Path) -> None:
    require_sandbox()
    with namespaces("alone") as names:
        box = Sandbox(tmp_path)
        result = box.run(_bootstrap(), netns=names["alone"])
        rules = "\n".join(_filter_rules(names["alone"]))
    assert result.returncode == 1
    assert f"-A DOCKER-USER -d {IMDS}/32 -j DROP" in rules, "containment does not wait for the network"
    assert "-A INPUT -i docker0 -p tcp -m tcp --dport 2375 -j DROP" in rules
    assert box.calls("ros") == [], "no identity, no advertise address"
    assert box.read("run-after/swarm-cluster/identity") == ""
    assert "node-bootstrap: FAILED: no answer for meta-data/instance-id" in box.read("console")
    assert box.seconds == 40 * 3, "it retried for two minutes"


@pytest.mark.parametrize(
    ("item", "value", "message"),
    [
        ("local-ipv4", None, "no answer for meta-data/local-ipv4"),
        ("local-ipv4", "<nil>", "unexpected local-ipv4"),
        ("local-ipv4", "10.30.1", "unexpected local-ipv4"),
        ("instance-id", "<html>error</html>", "unexpected instance-id"),
    ],
)
def test_metadata_without_a_usable_identity_stops_before_the_node_joins(
    network: Network, tmp_path: Path, item: str, value: str | None, message: str
) -> None:
    box = Sandbox(tmp_path)
    original = network.imds.items[item]
    if value is None:
        network.imds.remove(item)
    else:
        network.imds.set(item, value)
    try:
        result = box.run(_bootstrap(), netns=network.node)
    finally:
        network.imds.set(item, original)
    assert result.returncode == 1
    assert not [c for c in box.calls("ros") if "SWARM_ADVERTISE" in c or "hostname" in c]
    assert box.read("run-after/swarm-cluster/identity") == ""
    assert f"node-bootstrap: FAILED: {message}" in box.read("console")
