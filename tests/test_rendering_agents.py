"""rendering.agents: the node_agents archive decodes back to the package and runs from where it lands."""

from __future__ import annotations

import ast
import base64
import gzip
import io
import subprocess
import sys
import zipfile
from pathlib import Path

import jsonschema
import yaml

from node_agents.image import AGENT_IMAGE
from rendering.agents import AGENTS_DIR, ARCHIVE, agent_files, agent_service, modules_needed, without_docstrings

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "tests" / "data" / "rancheros-cloud-config.schema.json"


def _decode(entry: dict[str, str]) -> zipfile.ZipFile:
    assert entry["encoding"] == "gz+b64"  # what RancherOS's config.DecodeContent undoes
    return zipfile.ZipFile(io.BytesIO(gzip.decompress(base64.b64decode(entry["content"]))))


def _code(source: str) -> str:
    return ast.dump(ast.parse(without_docstrings(source)))


def test_archive_decodes_back_to_the_package_code() -> None:
    (entry,) = agent_files(["s3"])
    assert entry["path"] == ARCHIVE
    archive = _decode(entry)
    names = sorted(archive.namelist())
    assert names == [f"node_agents/{m}.py" for m in ("__init__", "aws", "http", "imds", "runtime", "s3", "sigv4")]
    for name in names:
        original = (ROOT / name).read_text(encoding="utf-8")
        shipped = archive.read(name).decode("utf-8")
        assert ast.dump(ast.parse(shipped)) == _code(original)
        assert '"""' not in shipped.split("\n", 1)[0]


def test_only_imported_modules_are_shipped() -> None:
    assert modules_needed(["consul"]) == ["__init__", "consul", "http"]
    assert "docker" not in modules_needed(["s3"])


def test_rendering_is_reproducible_and_schema_valid() -> None:
    files = agent_files(["docker", "consul"])
    assert files == agent_files(["consul", "docker"])
    document = {"write_files": files, "rancher": {"services": agent_service("drain", "docker")}}
    schema = yaml.safe_load(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.validate(document, schema)


def test_shipped_archive_imports_where_it_lands(tmp_path: Path) -> None:
    (entry,) = agent_files(["s3", "docker", "consul"])
    archive = tmp_path / "node_agents.zip"
    archive.write_bytes(gzip.decompress(base64.b64decode(entry["content"])))
    probe = "import node_agents.s3, node_agents.docker, node_agents.consul as c; print(c.__file__)"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        env={"PYTHONPATH": str(archive)},
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    assert result.stdout.strip().startswith(str(archive))


def test_agent_service_is_a_user_docker_service() -> None:
    ((name, service),) = agent_service(
        "drain-agent",
        "drain",
        ["--window", "300"],
        {"SWARM_HOST": "tcp://127.0.0.1:4000"},
        volumes=["/var/lib/x:/state"],
    ).items()
    assert name == "drain-agent"
    assert service["image"] == AGENT_IMAGE and "labels" not in service  # no io.rancher.os.scope: user Docker
    assert service["command"] == ["python3", "-m", "node_agents.drain", "--window", "300"]
    assert (
        f"PYTHONPATH={ARCHIVE}" in service["environment"]
        and "SWARM_HOST=tcp://127.0.0.1:4000" in service["environment"]
    )
    assert service["volumes"] == [f"{AGENTS_DIR}:{AGENTS_DIR}:ro", "/var/lib/x:/state"]
    assert (service["restart"], service["net"]) == ("always", "host")
    assert "net" not in agent_service("x", "y", host_network=False)["x"]
