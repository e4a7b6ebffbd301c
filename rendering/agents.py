"""Node agents on the host: the `node_agents` modules as files, and a user-Docker service per agent.

Files
    The console writes plain `write_files` (no `container:`) on the host before user Docker starts, so
    the modules are in place under AGENTS_DIR/node_agents/ when an agent's container first runs. Only
    the modules the host's agents import (transitively) are written, without docstrings, comments and
    function annotations: an `ast` round trip that keeps the behaviour (`from __future__ import
    annotations` never evaluates those; tests run the client tests against the shipped files) and
    changes tracebacks' line numbers (the repository has the documented source). They are plain text:
    user-data is stored gzip'd as a whole (rendering.yaml_text), which compresses plain code better than
    per-file `encoding: gz+b64` could (base64 of gzip'd bytes does not compress again; RancherOS v1.5.8
    would accept it: cmd/cloudinitexecute/cloudinitexecute.go:129 calls config.DecodeContent, which
    takes "gz+b64", config/cloudinit/config/decode.go:39-58). RancherOS replaces `$private_ipv4` and
    friends anywhere in user-data, so code containing them is refused.

Fetched instead (Swarm nodes)
    A Swarm manager's user-data with the drain, metric and rebalancing agents as files exceeds 16 KB gzip'd.
    There the modules are ONE zip archive (`agents_archive`, reproducible) that the program stores in S3
    (components.node_agents_archive); user-data carries node_agents/bootstrap.py (`bootstrap_files`) and
    the archive's URL (`AgentArchive`), and `fetched_agent_service` runs `python3 bootstrap.py <module>`,
    which downloads the archive into node_agents.bootstrap.ARCHIVE_DIR once, checks its digest and runs the
    agent from it (zipimport).

Service
    A user-Docker RancherOS service made by rendering.node_services.user_service (no `io.rancher.os.scope`:
    user Docker 19.03 pulls the OCI image index that system-docker cannot; node-images pulls it with
    retries first and node-health watches it) running `python3 -m node_agents.<module>` in
    node_agents.image's AGENT_IMAGE, with the agents directory mounted read-only and on PYTHONPATH,
    `restart: always`. Host networking by default: agents talk to the node's own engine and Consul on
    loopback and to the instance metadata service, which node-bootstrap's DOCKER-USER rule blocks for
    bridged containers.
"""

from __future__ import annotations

import ast
import functools
import io
import zipfile
from collections.abc import Iterable, Mapping, Sequence
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


@functools.cache  # every group renders the same modules: read and parse each file once per run
def _source(module: str) -> str:
    return (_SOURCE / f"{module}.py").read_text(encoding="utf-8")


@functools.cache
def _imports(module: str) -> frozenset[str]:
    """node_agents modules `module` imports directly."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(_source(module))):
        names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        found.update(name.split(".")[1] for name in names if name.startswith(f"{PACKAGE}."))
    return frozenset(found)


def modules_needed(entry_points: Iterable[str]) -> list[str]:
    """`entry_points` and every node_agents module they import, transitively, plus the package's __init__."""
    needed: set[str] = {"__init__"}
    pending = list(entry_points)
    while pending:
        module = pending.pop()
        if module not in needed:
            needed.add(module)
            pending.extend(_imports(module))
    return sorted(needed)


@functools.cache
def shipped_code(source: str) -> str:
    """`source` without docstrings, comments and function annotations: what a host gets."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            node.returns = None
            arguments = node.args
            for argument in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs):
                argument.annotation = None
            for argument in filter(None, (arguments.vararg, arguments.kwarg)):
                argument.annotation = None
        if (
            isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and ast.get_docstring(node, clean=False) is not None
        ):
            node.body = node.body[1:] or [ast.Pass()]
    return ast.unparse(tree) + "\n"


def _user_data_code(module: str) -> str:
    code = shipped_code(_source(module))
    for token in METADATA_TOKENS:
        if token in code:
            raise ValueError(f"node_agents/{module}.py contains {token!r}, which RancherOS would replace")
    return code


def agent_files(entry_points: Iterable[str]) -> list[dict[str, str]]:
    """`write_files` entries that put the modules `entry_points` need under AGENTS_DIR on the host."""
    return [
        {"path": f"{AGENTS_DIR}/{PACKAGE}/{module}.py", "permissions": "0444", "owner": "root", "content": code}
        for module in modules_needed(entry_points)
        for code in [_user_data_code(module)]
    ]


def agents_archive(entry_points: Iterable[str]) -> bytes:
    """The zip archive (stored members, fixed timestamps) of the modules `entry_points` need."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for module in modules_needed(entry_points):
            member = zipfile.ZipInfo(f"{PACKAGE}/{module}.py", _ZIP_EPOCH)
            member.external_attr = 0o444 << 16
            archive.writestr(member, shipped_code(_source(module)))
    return buffer.getvalue()


def bootstrap_files() -> list[dict[str, str]]:
    """The `write_files` entry that puts node_agents/bootstrap.py on the host."""
    return [{"path": BOOTSTRAP, "permissions": "0444", "owner": "root", "content": _user_data_code("bootstrap")}]


def agent_service(
    name: str,
    module: str,
    args: Sequence[str] = (),
    environment: Mapping[str, str] | None = None,
    *,
    volumes: Sequence[str] = (),
    host_network: bool = True,
) -> dict[str, Any]:
    """{name: the RancherOS service that runs `node_agents.<module>`}, for `rancher.services`."""
    env = {"PYTHONPATH": AGENTS_DIR, "PYTHONDONTWRITEBYTECODE": "1", **(environment or {})}
    options: dict[str, Any] = {
        "command": ["python3", "-m", f"{PACKAGE}.{module}", *args],
        "environment": [f"{key}={value}" for key, value in env.items()],
        "volumes": [f"{AGENTS_DIR}:{AGENTS_DIR}:ro", *volumes],
    }
    if host_network:
        options["net"] = "host"
    services: dict[str, Any] = user_service(name, AGENT_IMAGE, **options)["rancher"]["services"]
    return services


def fetched_agent_service(
    name: str,
    module: str,
    archive: AgentArchive,
    environment: Mapping[str, str] | None = None,
    *,
    volumes: Sequence[str] = (),
) -> dict[str, Any]:
    """{name: the RancherOS service that runs `node_agents.<module>` from the fetched archive}."""
    env = {"PYTHONDONTWRITEBYTECODE": "1", "AGENTS_URL": archive.url, "AWS_REGION": archive.region}
    options: dict[str, Any] = {
        "command": ["python3", BOOTSTRAP, module],
        "environment": [f"{key}={value}" for key, value in {**env, **(environment or {})}.items()],
        "volumes": [f"{AGENTS_DIR}:{AGENTS_DIR}:ro", f"{ARCHIVE_DIR}:{ARCHIVE_DIR}", *volumes],
        "net": "host",
    }
    services: dict[str, Any] = user_service(name, AGENT_IMAGE, **options)["rancher"]["services"]
    return services
