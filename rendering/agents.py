"""Node agents on a host: one archive of the `node_agents` package, fetched at boot, and a service per agent.

Delivery
    Every host that runs agents (Swarm nodes, Consul servers, registry hosts) gets the same zip archive of the
    repository's `node_agents/*.py` files, byte for byte (`agents_archive`, reproducible), which the program
    stores in S3 under its SHA-256 (components.node_agents_archive). EC2's 16 KB of user-data could not hold
    the agents next to a host's boot configuration, and code that is not rewritten on its way to the host
    needs no test that the rewrite kept its behaviour. User-data carries node_agents/bootstrap.py
    (`bootstrap_files`) and the archive's URL (`AgentArchive`); `agent_service` runs
    `python3 bootstrap.py <module>`, which downloads the archive into node_agents.bootstrap.ARCHIVE_DIR once,
    checks its digest and runs the agent from it (zipimport). RancherOS replaces `$private_ipv4` and friends
    anywhere in user-data, so a bootstrap containing them is refused.

Service
    A user-Docker RancherOS service made by rendering.node_services.user_service (no `io.rancher.os.scope`:
    user Docker 19.03 pulls the OCI image index that system-docker cannot; node-images pulls it with
    retries first and node-health watches it) in node_agents.image's AGENT_IMAGE, `restart: always`, with
    host networking: agents talk to the node's own engine and Consul on loopback and to the instance
    metadata service, which node-bootstrap's DOCKER-USER rule blocks for bridged containers.
"""

from __future__ import annotations

import functools
import io
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

from node_agents.bootstrap import ARCHIVE_DIR
from node_agents.image import AGENT_IMAGE
from rendering.inputs import METADATA_TOKENS
from rendering.node_services import user_service

PACKAGE = "node_agents"
AGENTS_DIR = "/opt/swarm-cluster/agents"
BOOTSTRAP = f"{AGENTS_DIR}/bootstrap.py"
_SOURCE = files(PACKAGE)
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class AgentArchive:
    """Where a host fetches the agents' archive (see components.node_agents_archive)."""

    url: str  # .../<sha256>.zip: node_agents.bootstrap checks the content against the name
    region: str


def agents_archive() -> bytes:
    """The zip archive (stored members, sorted, fixed timestamps) of every `node_agents` module as it is."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for module in sorted(path.name for path in _SOURCE.iterdir() if path.name.endswith(".py")):
            member = zipfile.ZipInfo(f"{PACKAGE}/{module}", _ZIP_EPOCH)
            member.external_attr = 0o444 << 16
            archive.writestr(member, (_SOURCE / module).read_bytes())
    return buffer.getvalue()


def bootstrap_files() -> list[dict[str, str]]:
    """The `write_files` entry that puts node_agents/bootstrap.py on the host."""
    return [{"path": BOOTSTRAP, "permissions": "0444", "owner": "root", "content": _bootstrap_code()}]


@functools.cache  # every host carries it
def _bootstrap_code() -> str:
    code = (_SOURCE / "bootstrap.py").read_text(encoding="utf-8")
    for token in METADATA_TOKENS:
        if token in code:
            raise ValueError(f"node_agents/bootstrap.py contains {token!r}, which RancherOS would replace")
    return code


def agent_service(
    name: str,
    module: str,
    archive: AgentArchive,
    environment: Mapping[str, str] | None = None,
    *,
    args: Sequence[str] = (),
    volumes: Sequence[str] = (),
    labels: Mapping[str, str] | None = None,
    one_shot: bool = False,
) -> dict[str, Any]:
    """User-data for the RancherOS service `name` that runs `node_agents.<module> args...` from the fetched archive
    (`labels` and a `one_shot` step as rendering.node_services.user_service takes them)."""
    env = {"PYTHONDONTWRITEBYTECODE": "1", "AGENTS_URL": archive.url, "AWS_REGION": archive.region}
    options: dict[str, Any] = {
        "command": ["python3", BOOTSTRAP, module, *args],
        "environment": [f"{key}={value}" for key, value in {**env, **(environment or {})}.items()],
        "volumes": [f"{AGENTS_DIR}:{AGENTS_DIR}:ro", f"{ARCHIVE_DIR}:{ARCHIVE_DIR}", *volumes],
        "net": "host",
        "labels": dict(labels or {}),
    }
    return user_service(name, AGENT_IMAGE, one_shot=one_shot, **options)
