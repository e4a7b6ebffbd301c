"""Consul server config and user-data."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from typing import Any

import pytest
import yaml

from node_agents.image import AGENT_IMAGE
from rendering.agents import BOOTSTRAP, AgentArchive
from rendering.consul_server import ConsulServerSpec, SnapshotSpec, render_consul_config, render_consul_server
from rendering.yaml_text import UserDataTooLarge
from tests.cloud_config_checks import (
    duplicate_list_items,
    schema_errors,
    shell_snippets,
    shellcheck_errors,
)

GOSSIP_KEY_PARAMETER = "/swarm-cluster/staging/consul-gossip-key"
KMS_KEY = "arn:aws:kms:eu-west-1:123456789012:key/5f0c9a2e-8b1d-4c7e-9a36-2d4b8e1f0c77"
AGENTS = AgentArchive(
    f"https://example-staging-docker-registry.s3.eu-west-1.amazonaws.com/node-agents/{'c' * 64}.zip", "eu-west-1"
)
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx0ZXN0a2V5Zm9ydGhlcmVuZGVyZXJ0ZXN0cw== ops@example"


def spec(**changes: Any) -> ConsulServerSpec:
    base = ConsulServerSpec(
        environment="staging",
        datacenter="staging",
        image="hashicorp/consul:1.20.2",
        bootstrap_expect=3,
        region="eu-west-1",
        join_tag_key="consul.cluster",
        join_tag_value="staging",
        ssh_authorized_keys=[KEY],
        instance_type="t3.small",
        gossip_key_parameter=GOSSIP_KEY_PARAMETER,
        snapshots=SnapshotSpec("example-staging-docker-registry", "consul-snapshots/", 300, KMS_KEY),
        agents=AGENTS,
    )
    return dataclasses.replace(base, **changes)


def test_config_parses_back() -> None:
    config = json.loads(render_consul_config(spec()))
    assert config["server"] is True
    assert config["bootstrap_expect"] == 3
    assert config["datacenter"] == "staging"
    assert config["retry_join"] == ["provider=aws region=eu-west-1 tag_key=consul.cluster tag_value=staging"]
    assert config["client_addr"] == "0.0.0.0"
    assert config["ui_config"] == {"enabled": True}
    assert config["data_dir"] == "/consul/data"
    assert config["bind_addr"] == '{{ GetInterfaceIP "eth0" }}'
    assert "encrypt" not in config, "the key comes from SSM, in a file of its own (tests/test_host_secrets.py)"
    assert config["leave_on_terminate"] is True


@pytest.mark.parametrize(
    ("enforcement", "incoming", "outgoing"),
    [("full", True, True), ("outgoing", False, True), ("none", False, False)],
)
def test_gossip_enforcement_steps(enforcement: str, incoming: bool, outgoing: bool) -> None:
    config = json.loads(render_consul_config(spec(gossip_enforcement=enforcement)))
    assert (config["encrypt_verify_incoming"], config["encrypt_verify_outgoing"]) == (incoming, outgoing)


@pytest.mark.parametrize("servers", [1, 3, 5])
def test_autopilot_cleans_up_but_never_below_the_server_count(servers: int) -> None:
    autopilot = json.loads(render_consul_config(spec(bootstrap_expect=servers)))["autopilot"]
    assert autopilot["cleanup_dead_servers"] is True
    assert autopilot["min_quorum"] == servers
    # A new server must be promoted to voter well inside the instance refresh warm-up (300 s).
    assert autopilot["server_stabilization_time"] == "30s"
    assert autopilot["last_contact_threshold"] == "1s"


@pytest.mark.parametrize(
    "changes",
    [
        {"bootstrap_expect": 0},
        {"join_tag_value": "two words"},
        {"join_tag_key": "a=b"},
        {"region": "Ireland"},
        {"datacenter": "Staging DC"},
        {"gossip_enforcement": "partial"},
    ],
)
def test_bad_config_input_is_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        render_consul_config(spec(**changes))


def test_user_data_passes_every_check() -> None:
    text = render_consul_server(spec())
    assert text.split("\n", 1)[0] == "#cloud-config"
    assert schema_errors(text) == []
    assert duplicate_list_items(text) == []
    assert shellcheck_errors(text) == []
    names = [name for name, _ in shell_snippets(text)]
    assert "rancher.services.consul-server.entrypoint" in names


def test_user_data_writes_the_config_and_runs_consul() -> None:
    document = yaml.safe_load(render_consul_server(spec()))
    written = next(f for f in document["write_files"] if f["path"] == "/opt/consul/config/server.json")
    assert json.loads(written["content"]) == json.loads(render_consul_config(spec()))
    service = document["rancher"]["services"]["consul-server"]
    assert service["image"] == "hashicorp/consul:1.20.2"
    assert service["restart"] == "always"
    assert service["net"] == "host"
    assert "/opt/consul/data:/consul/data" in service["volumes"]
    assert "/opt/consul/config:/etc/consul.d:ro" in service["volumes"]
    assert service["entrypoint"][-1].endswith("exec docker-entrypoint.sh agent -config-file=/etc/consul.d/server.json")
    assert "prefix=staging-consul\n" in document["write_files"][0]["content"]


@pytest.mark.parametrize("kms_key", [KMS_KEY, None])
def test_the_snapshot_agent_runs_after_consul_with_its_config(kms_key: str | None) -> None:
    snapshots = SnapshotSpec("example-staging-docker-registry", "consul-snapshots/", 600, kms_key)
    document = yaml.safe_load(render_consul_server(spec(snapshots=snapshots)))
    agent = document["rancher"]["services"]["consul-snapshot"]
    assert agent["image"] == AGENT_IMAGE and agent["net"] == "host" and agent["restart"] == "always"
    assert agent["labels"]["io.rancher.os.after"] == "node-images,consul-server"
    assert "io.rancher.os.scope" not in agent["labels"], "a user-Docker service: the image is not preloaded"
    command = agent["command"]
    assert command[:4] == ["python3", BOOTSTRAP, "consul_snapshot", "run"]
    assert f"AGENTS_URL={AGENTS.url}" in agent["environment"], "it runs from the archive every host fetches"
    options = dict(zip(command[4::2], command[5::2], strict=True))
    assert options.pop("--kms-key-id", None) == kms_key
    assert options == {
        "--bucket": "example-staging-docker-registry",
        "--prefix": "consul-snapshots/",
        "--interval": "600",
        "--server-config": "/etc/consul.d/server.json",
    }
    assert "/opt/consul/config:/etc/consul.d:ro" in agent["volumes"]
    assert BOOTSTRAP in {f["path"] for f in document["write_files"]}


def test_snapshot_interval_under_a_minute_is_refused() -> None:
    with pytest.raises(ValueError, match="shorter than a minute"):
        render_consul_server(spec(snapshots=SnapshotSpec("b", "consul-snapshots/", 30, None)))


def test_unpinned_image_is_refused() -> None:
    with pytest.raises(ValueError, match="image"):
        render_consul_server(spec(image="hashicorp/consul"))


def test_oversized_user_data_names_the_host() -> None:
    # random key material: user-data is gzip'd, so only text that does not compress can reach the limit
    keys = [
        f"ssh-ed25519 {base64.b64encode(hashlib.shake_256(bytes([i])).digest(300)).decode()} k{i}" for i in range(50)
    ]
    with pytest.raises(UserDataTooLarge, match="staging consul server"):
        render_consul_server(spec(ssh_authorized_keys=keys))
