"""node_agents' IMDS, Consul and HTTP clients against tests.fakes."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from node_agents.consul import Consul
from node_agents.http import HttpClient, HttpStatusError, HttpUnreachable
from node_agents.imds import Imds, ImdsError
from tests.fakes.consul import FakeConsul, snapshot_of
from tests.fakes.imds import FakeImds


def test_imds_items_lifecycle_state_and_failures() -> None:
    with FakeImds(instance_id="i-0feedfacecafe0001", region="us-east-2") as fake:
        imds = Imds(fake.url)
        assert (imds.instance_id(), imds.region(), imds.target_lifecycle_state()) == (
            "i-0feedfacecafe0001",
            "us-east-2",
            "InService",
        )
        fake.set_lifecycle_state("Terminated")
        assert imds.target_lifecycle_state() == "Terminated"
        fake.remove("autoscaling/target-lifecycle-state")
        assert imds.target_lifecycle_state() is None
        fake.fail("instance-id", 500)
        with pytest.raises(HttpStatusError):
            imds.instance_id()
        fake.recover("instance-id")
        fake.remove("placement/region")
        with pytest.raises(ImdsError, match="placement/region"):
            imds.region()


def test_imds_short_timeout() -> None:
    with FakeImds() as fake:
        fake.delay("instance-id", 1.0)
        started = time.monotonic()
        with pytest.raises(HttpUnreachable):
            Imds(fake.url, timeout=0.05).instance_id()
        assert time.monotonic() - started < 0.9


def test_imds_credentials_are_cached_until_near_expiry() -> None:
    with FakeImds(role="node") as fake:
        imds = Imds(fake.url)
        first = imds.credentials(time.time())
        imds.credentials(time.time())
        assert fake.gets("iam/security-credentials/node") == 1
        fake.set_credentials("node", access_key="AKIAROTATED", expires_in=timedelta(minutes=3))
        assert imds.credentials(first.expires_at or 0).access_key == "AKIAROTATED"
        imds.credentials(time.time())  # expires within the refresh margin: fetched again
        assert fake.gets("iam/security-credentials/node") == 3


def test_imds_without_role() -> None:
    with FakeImds(role=None) as fake, pytest.raises(ImdsError):
        Imds(fake.url).credentials(time.time())


def test_consul_kv_status_autopilot() -> None:
    with FakeConsul(leader="10.0.0.1:8300", peers=["10.0.0.1:8300", "10.0.0.2:8300"]) as fake:
        consul = Consul(fake.url.removeprefix("http://"))
        assert consul.kv_get("docker/nodes/a") is None
        assert consul.kv_put("docker/nodes/a", b"10.1.1.1:2375")
        assert consul.kv_put("docker/nodes/b", b"")
        assert consul.kv_put("docker/network/v1.0/x", b"{}")
        entry = consul.kv_get("docker/nodes/a")
        assert entry is not None and entry.value == b"10.1.1.1:2375"
        assert not consul.kv_put("docker/nodes/a", b"late", cas=entry.modify_index - 1)
        assert consul.kv_put("docker/nodes/a", b"new", cas=entry.modify_index)
        assert not consul.kv_put("docker/nodes/a", b"x", cas=0)
        assert [e.key for e in consul.kv_list("docker/nodes/")] == ["docker/nodes/a", "docker/nodes/b"]
        assert consul.kv_keys("docker/", separator="/") == ["docker/network/", "docker/nodes/"]
        consul.kv_delete("docker/nodes/", recurse=True)
        assert consul.kv_list("docker/nodes/") == []
        assert (consul.leader(), consul.peers()) == ("10.0.0.1:8300", ["10.0.0.1:8300", "10.0.0.2:8300"])
        fake.set_leader(None)
        assert consul.leader() is None
        consul.set_autopilot_configuration({**consul.autopilot_configuration(), "CleanupDeadServers": False})
        assert fake.autopilot["CleanupDeadServers"] is False


def test_consul_snapshot_save_restore_and_corrupt() -> None:
    with FakeConsul(kv={"docker/network/v1.0/net": b"overlay"}) as fake:
        consul = Consul(fake.url)
        saved = consul.snapshot_save()
        fake.kv.clear()
        consul.snapshot_restore(saved)
        assert fake.kv == {"docker/network/v1.0/net": b"overlay"}
        with pytest.raises(HttpStatusError) as raised:
            consul.snapshot_restore(saved[:-5])
        assert raised.value.status == 500 and fake.kv == {"docker/network/v1.0/net": b"overlay"}
        consul.snapshot_restore(snapshot_of({}))
        assert fake.kv == {}
        fake.set_leader(None)
        with pytest.raises(HttpStatusError, match="No cluster leader"):
            consul.snapshot_save()


def test_http_unreachable_and_unix_socket(tmp_path: object) -> None:
    with pytest.raises(HttpUnreachable):
        HttpClient("http://127.0.0.1:9", timeout=1).get_json("/")
    with pytest.raises(HttpUnreachable):
        HttpClient("unix:///nonexistent/docker.sock", timeout=1).get_json("/info")
    with pytest.raises(ValueError):
        HttpClient("ftp://x")
