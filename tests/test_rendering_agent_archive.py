"""rendering.agents: one archive of the package's own files, importable where it lands; user-data carries only
the bootstrap that fetches it, and each agent is a user-Docker service that runs from it."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from pathlib import Path
from unittest import mock

import jsonschema
import pytest
import yaml

from node_agents.bootstrap import ARCHIVE_DIR
from node_agents.image import AGENT_IMAGE
from rendering import agents
from rendering.agents import AGENTS_DIR, BOOTSTRAP, AgentArchive, agent_service, agents_archive, bootstrap_files
from rendering.yaml_text import decode_user_data, encode_user_data, finish

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "tests" / "data" / "rancheros-cloud-config.schema.json"
ARCHIVE = AgentArchive(f"https://bucket.s3.eu-west-1.amazonaws.com/node-agents/{'b' * 64}.zip", "eu-west-1")
EVERY_MODULE = sorted(path.name for path in (ROOT / "node_agents").glob("*.py"))


def test_archive_holds_every_module_byte_for_byte_and_is_reproducible() -> None:
    content = agents_archive()
    archive = zipfile.ZipFile(io.BytesIO(content))
    assert archive.namelist() == [f"node_agents/{name}" for name in EVERY_MODULE]
    for member in archive.infolist():
        assert archive.read(member) == (ROOT / member.filename).read_bytes()
        assert (member.date_time, member.compress_type, member.external_attr >> 16) == (
            (1980, 1, 1, 0, 0, 0),
            zipfile.ZIP_STORED,
            0o444,
        )
    assert agents_archive() == content


def test_archive_imports_where_it_lands(tmp_path: Path) -> None:
    archive = tmp_path / "node_agents.zip"
    archive.write_bytes(agents_archive())
    probe = "import node_agents.drain, node_agents.primary, node_agents.consul_snapshot as c; print(c.__file__)"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        env={"PYTHONPATH": str(archive), "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    assert result.stdout.strip().startswith(str(archive))


def test_bootstrap_is_the_repository_file() -> None:
    (entry,) = bootstrap_files()
    assert (entry["path"], entry["permissions"], entry["owner"], "encoding" in entry) == (
        BOOTSTRAP,
        "0444",
        "root",
        False,
    )
    assert entry["content"] == (ROOT / "node_agents" / "bootstrap.py").read_text(encoding="utf-8")


def test_a_bootstrap_rancheros_would_rewrite_is_refused() -> None:
    source = mock.MagicMock()
    source.__truediv__.return_value.read_text.return_value = 'ADDRESS = "$private_ipv4"\n'
    agents._bootstrap_code.cache_clear()
    with mock.patch.object(agents, "_SOURCE", source), pytest.raises(ValueError, match=r"\$private_ipv4"):
        bootstrap_files()
    agents._bootstrap_code.cache_clear()


def test_agent_service_is_a_user_docker_service_that_runs_from_the_archive() -> None:
    services = agent_service("drain", "drain", ARCHIVE, {"X": "1"}, args=["--window", "300"], volumes=["/x:/y"])[
        "rancher"
    ]["services"]
    ((name, service),) = services.items()
    assert name == "drain" and service["image"] == AGENT_IMAGE
    # No io.rancher.os.scope: user Docker; started after node-images pulled its image with retries.
    assert service["labels"] == {"io.rancher.os.after": "node-images"}
    assert service["command"] == ["python3", BOOTSTRAP, "drain", "--window", "300"]
    assert f"AGENTS_URL={ARCHIVE.url}" in service["environment"] and "X=1" in service["environment"]
    assert "AWS_REGION=eu-west-1" in service["environment"]
    assert service["volumes"] == [f"{AGENTS_DIR}:{AGENTS_DIR}:ro", f"{ARCHIVE_DIR}:{ARCHIVE_DIR}", "/x:/y"]
    assert (service["restart"], service["net"]) == ("always", "host")


def test_a_host_document_with_an_agent_round_trips_and_is_schema_valid() -> None:
    document = {"write_files": bootstrap_files(), **agent_service("drain", "drain", ARCHIVE)}
    text = finish(document, "test host")
    assert yaml.safe_load(decode_user_data(encode_user_data(text)).split("\n", 1)[1]) == document
    jsonschema.validate(document, yaml.safe_load(SCHEMA.read_text(encoding="utf-8")))
