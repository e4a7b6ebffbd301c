"""Consul server: the agent's JSON config and the user-data that runs it as a RancherOS service.

Servers find each other with cloud auto-join (`provider=aws`, by EC2 tag; needs ec2:DescribeInstances
and the instance role, hence host networking). The agent binds to eth0 through a go-sockaddr template,
so one config serves every server. The config is written by the console (`write_files`) into /opt,
which the console shares with the host and user Docker; the service waits for it, since RancherOS may
start the container before the console has written its files on the first boot. Consul is a user-Docker
service (rendering.node_services).

Server turnover: a server that is terminated leaves the raft peer set on its way out
(`leave_on_terminate`; servers default to not leaving), and autopilot removes servers that died
without leaving, never below the configured server count (`min_quorum`). A new server must stay
healthy for `server_stabilization_time` before it votes, well inside the instance refresh's warm-up,
so it counts before the next old one stops. Autopilot reads these settings only when a cluster
bootstraps; the snapshot agent applies them to older clusters.

Snapshots: `consul-snapshot` (node_agents.consul_snapshot) runs beside every server, after it: it restores
the newest valid snapshot into a cluster that started empty, then saves the leader's snapshot to S3 on
every interval. It reads the autopilot block of the same config file, to apply it to clusters that
bootstrapped without it.

Gossip is encrypted with the stack's 32-byte key, which user-data only names: the one-shot step
`consul-gossip-key` (rendering.host_secret) writes `{"encrypt": key}` from SSM Parameter Store into a file of
its own, and the server waits for it too. Consul runs as the image's `consul` user (the entrypoint's su-exec),
so the server's start copies the file, still as root, into the image's config directory, mode 0600 and owned
by `consul`; the entrypoint passes that directory to the agent (`-config-dir=/consul/config`) beside our
`-config-file`. `gossip_enforcement` other than "full" is one of the two intermediate steps of turning
encryption on in a running cluster (README, "Gossip encryption").
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rendering.agents import AgentArchive, agent_service, bootstrap_files
from rendering.host_secret import SECRETS_VOLUME, HostSecret, secret_step
from rendering.inputs import require_image, require_name
from rendering.node_services import AFTER, ConfigFile, configured_service, host_user_data
from rendering.rancheros_host import host_document
from rendering.yaml_text import merge

CONFIG_DIR = "/opt/consul/config"
DATA_DIR = "/opt/consul/data"
CONFIG_FILE = "server.json"
SERVER_SERVICE = "consul-server"
SNAPSHOT_AGENT = "consul-snapshot"
GOSSIP_KEY_STEP = "consul-gossip-key"
_IN_CONTAINER = "/etc/consul.d"
_IMAGE_CONFIG_DIR = "/consul/config"  # the entrypoint's -config-dir, owned by consul
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]")
_DATACENTER = re.compile(r"[a-z0-9_-]{1,64}")
_TAG = re.compile(r"[A-Za-z0-9_.:/+@-]{1,128}")  # go-discover splits on spaces; `=` would be ambiguous


# encrypt_verify_incoming / encrypt_verify_outgoing per step of turning gossip encryption on.
GOSSIP_ENFORCEMENT = {"none": (False, False), "outgoing": (False, True), "full": (True, True)}


def autopilot_settings(server_count: int) -> dict[str, Any]:
    """The agent config's `autopilot` block."""
    return {
        "cleanup_dead_servers": True,
        # 200ms (the default) flags a busy burstable instance as unhealthy and stalls its promotion.
        "last_contact_threshold": "1s",
        "server_stabilization_time": "30s",
        "min_quorum": server_count,
    }


@dataclass(frozen=True)
class SnapshotSpec:
    bucket: str
    prefix: str  # "consul-snapshots/"
    interval_seconds: int
    kms_key_id: str | None  # None: the bucket's default encryption


@dataclass(frozen=True)
class ConsulServerSpec:
    environment: str
    datacenter: str
    image: str  # pinned, e.g. "hashicorp/consul:1.20.2"
    bootstrap_expect: int
    region: str  # for cloud auto-join
    join_tag_key: str  # EC2 tag the servers carry, for provider=aws auto-join
    join_tag_value: str
    ssh_authorized_keys: Sequence[str]
    instance_type: str  # sets rancher.resize_device
    gossip_key_parameter: str  # SSM SecureString holding the base64 of 32 bytes (validated with the stack config)
    snapshots: SnapshotSpec
    agents: AgentArchive  # where the snapshot agent's code is fetched from
    gossip_enforcement: str = "full"


def render_consul_config(spec: ConsulServerSpec) -> str:
    if spec.bootstrap_expect < 1:
        raise ValueError(f"bootstrap_expect is {spec.bootstrap_expect}; it must be at least 1")
    if not _DATACENTER.fullmatch(spec.datacenter):
        raise ValueError(f"datacenter {spec.datacenter!r} must be lower-case letters, digits, '_' or '-'")
    if not _REGION.fullmatch(spec.region):
        raise ValueError(f"region {spec.region!r} is not an AWS region such as eu-west-1")
    for what, tag in (("join_tag_key", spec.join_tag_key), ("join_tag_value", spec.join_tag_value)):
        if not _TAG.fullmatch(tag):
            raise ValueError(f"{what} {tag!r} may only hold letters, digits and _.:/+@- (no spaces or '=')")
    if spec.gossip_enforcement not in GOSSIP_ENFORCEMENT:
        raise ValueError(f"gossip_enforcement {spec.gossip_enforcement!r} must be one of {sorted(GOSSIP_ENFORCEMENT)}")
    verify_incoming, verify_outgoing = GOSSIP_ENFORCEMENT[spec.gossip_enforcement]
    config = {
        "server": True,
        "bootstrap_expect": spec.bootstrap_expect,
        "datacenter": spec.datacenter,
        "data_dir": "/consul/data",
        "bind_addr": '{{ GetInterfaceIP "eth0" }}',
        "client_addr": "0.0.0.0",
        "retry_join": [
            f"provider=aws region={spec.region} tag_key={spec.join_tag_key} tag_value={spec.join_tag_value}"
        ],
        "ui_config": {"enabled": True},
        "disable_update_check": True,
        "log_level": "INFO",
        "encrypt_verify_incoming": verify_incoming,
        "encrypt_verify_outgoing": verify_outgoing,
        "leave_on_terminate": True,
        "autopilot": autopilot_settings(spec.bootstrap_expect),
    }
    return json.dumps(config, indent=2, sort_keys=True) + "\n"


def render_consul_server(spec: ConsulServerSpec) -> str:
    what = f"{spec.environment} consul server"
    config = ConfigFile(CONFIG_DIR, _IN_CONTAINER, CONFIG_FILE, render_consul_config(spec), mode="0644")
    key = HostSecret(GOSSIP_KEY_STEP, spec.gossip_key_parameter, ("--json-key", "encrypt"))
    service = configured_service(
        SERVER_SERVICE,
        require_image(spec.image, f"{what}: image"),
        config,
        "docker-entrypoint.sh agent -config-file={file}",
        volumes=[f"{DATA_DIR}:/consul/data", SECRETS_VOLUME],
        waits_for=[key.path],
        prepare=f"install -m 0600 -o consul -g consul {key.path} {_IMAGE_CONFIG_DIR}/gossip-key.json",
        uts="host",
    )
    agent = _snapshot_agent(spec.snapshots, spec.agents, f"{_IN_CONTAINER}/{CONFIG_FILE}")
    environment = require_name(spec.environment, "environment")
    base = host_document(environment, "consul", spec.ssh_authorized_keys, spec.instance_type)
    return host_user_data(merge(merge(merge(base, service), agent), secret_step(key, spec.agents)), what)


def _snapshot_agent(snapshots: SnapshotSpec, agents: AgentArchive, config_path: str) -> dict[str, Any]:
    if snapshots.interval_seconds < 60:
        raise ValueError(f"snapshot interval {snapshots.interval_seconds}s is shorter than a minute")
    args = ["run", "--bucket", snapshots.bucket, "--prefix", snapshots.prefix]
    args += ["--interval", str(snapshots.interval_seconds), "--server-config", config_path]
    if snapshots.kms_key_id is not None:
        args += ["--kms-key-id", snapshots.kms_key_id]
    volumes = [f"{CONFIG_DIR}:{_IN_CONTAINER}:ro"]
    after_server = {AFTER: SERVER_SERVICE}  # the server it restores into (and, as every service, the image pulls)
    service = agent_service(SNAPSHOT_AGENT, "consul_snapshot", agents, args=args, volumes=volumes, labels=after_server)
    return merge({"write_files": bootstrap_files()}, service)
