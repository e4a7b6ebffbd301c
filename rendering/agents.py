"""Node agents on the host: the `node_agents` package as one file, and a user-Docker service per agent.

Files
    The console writes plain `write_files` (no `container:`) on the host before user Docker starts,
    so the package is in place when an agent's container first runs. It is ONE zip archive,
    AGENTS_DIR/node_agents.zip, that the agents import from (zipimport, through PYTHONPATH): one
    archive compresses far better than a file per module, and EC2 allows 16 KB of user-data. To fit,
    the archive holds only the modules the host's agents import (transitively), with docstrings and
    comments removed (an `ast` round trip: same code, other line numbers in tracebacks; the repository
    has the documented source). Members are stored and the whole archive is gzip'd and base64'd into
    `encoding: gz+b64`, which RancherOS v1.5.8 decodes before writing the file
    (cmd/cloudinitexecute/cloudinitexecute.go:129 calls config.DecodeContent, which accepts "gz+base64",
    "gzip+base64", "gz+b64" and "gzip+b64": config/cloudinit/config/decode.go:39-58). Timestamps are
    fixed so renders are reproducible.

Service
    A user-Docker RancherOS service (no `io.rancher.os.scope`: user Docker 19.03 pulls the OCI image
    index that system-docker cannot) running `python3 -m node_agents.<module>` in node_agents.image's
    AGENT_IMAGE, with the agents directory mounted read-only, `restart: always`. Host networking by
    default: agents talk to the node's own engine and Consul on loopback and to the instance metadata
    service, which node-bootstrap's DOCKER-USER rule blocks for bridged containers.
"""

from __future__ import annotations

import ast
import base64
import gzip
import io
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from importlib.resources import files
from typing import Any

from node_agents.image import AGENT_IMAGE

PACKAGE = "node_agents"
AGENTS_DIR = "/opt/swarm-cluster/agents"
ARCHIVE = f"{AGENTS_DIR}/{PACKAGE}.zip"
_SOURCE = files(PACKAGE)
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def _source(module: str) -> str:
    return (_SOURCE / f"{module}.py").read_text(encoding="utf-8")


def _imports(module: str) -> set[str]:
    """node_agents modules `module` imports directly."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(_source(module))):
        names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        found.update(name.split(".")[1] for name in names if name.startswith(f"{PACKAGE}."))
    return found


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


def without_docstrings(source: str) -> str:
    """`source` as the same code without docstrings and comments."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and ast.get_docstring(node, clean=False) is not None
        ):
            node.body = node.body[1:] or [ast.Pass()]
    return ast.unparse(tree) + "\n"


def agents_archive(entry_points: Iterable[str]) -> bytes:
    """The zip archive (stored members) of the modules `entry_points` need."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for module in modules_needed(entry_points):
            member = zipfile.ZipInfo(f"{PACKAGE}/{module}.py", _ZIP_EPOCH)
            member.external_attr = 0o444 << 16
            archive.writestr(member, without_docstrings(_source(module)))
    return buffer.getvalue()


def agent_files(entry_points: Iterable[str]) -> list[dict[str, str]]:
    """The `write_files` entry that puts the modules `entry_points` need on the host (ARCHIVE)."""
    content = base64.b64encode(gzip.compress(agents_archive(entry_points), 9, mtime=0)).decode("ascii")
    return [{"path": ARCHIVE, "permissions": "0444", "owner": "root", "encoding": "gz+b64", "content": content}]


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
    env = {"PYTHONPATH": ARCHIVE, "PYTHONDONTWRITEBYTECODE": "1", **(environment or {})}
    service: dict[str, Any] = {
        "image": AGENT_IMAGE,
        "command": ["python3", "-m", f"{PACKAGE}.{module}", *args],
        "environment": [f"{key}={value}" for key, value in env.items()],
        "volumes": [f"{AGENTS_DIR}:{AGENTS_DIR}:ro", *volumes],
        "restart": "always",
    }
    if host_network:
        service["net"] = "host"
    return {name: service}
