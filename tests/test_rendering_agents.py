"""rendering.agents: the shipped modules are the package's code, run from where they land, and fit."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from unittest import mock

import jsonschema
import pytest
import yaml

from node_agents.image import AGENT_IMAGE
from rendering import agents
from rendering.agents import AGENTS_DIR, agent_files, agent_service, modules_needed, without_docstrings
from rendering.yaml_text import decode_user_data, encode_user_data, finish

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "tests" / "data" / "rancheros-cloud-config.schema.json"
EVERY_MODULE = sorted(path.stem for path in (ROOT / "node_agents").glob("*.py"))


def test_shipped_files_are_the_package_code_without_docstrings() -> None:
    files = agent_files(["s3"])
    names = [entry["path"] for entry in files]
    modules = ("__init__", "aws", "http", "imds", "runtime", "s3", "sigv4")
    assert names == [f"{AGENTS_DIR}/node_agents/{m}.py" for m in modules]
    for entry, module in zip(files, modules, strict=True):
        source = (ROOT / "node_agents" / f"{module}.py").read_text(encoding="utf-8")
        assert ast.dump(ast.parse(entry["content"])) == ast.dump(ast.parse(without_docstrings(source)))
        assert (entry["permissions"], entry["owner"], "encoding" in entry) == ("0444", "root", False)
    assert '"""' not in "".join(entry["content"] for entry in files)


def test_only_imported_modules_are_shipped() -> None:
    assert modules_needed(["consul"]) == ["__init__", "consul", "http"]
    assert "docker" not in modules_needed(["s3"])


def test_rendered_user_data_round_trips_and_is_schema_valid() -> None:
    document = {"write_files": agent_files(EVERY_MODULE), "rancher": {"services": agent_service("drain", "docker")}}
    text = finish(document, "test host")
    assert yaml.safe_load(decode_user_data(encode_user_data(text)).split("\n", 1)[1]) == document
    jsonschema.validate(document, yaml.safe_load(SCHEMA.read_text(encoding="utf-8")))


def test_code_rancheros_would_rewrite_is_refused() -> None:
    with (
        mock.patch.object(agents, "_source", return_value='ADDRESS = "$private_ipv4"\n'),
        pytest.raises(ValueError, match=r"\$private_ipv4"),
    ):
        agent_files(["x"])


def test_shipped_modules_import_where_they_land(tmp_path: Path) -> None:
    for entry in agent_files(["s3", "docker", "consul"]):
        target = tmp_path / entry["path"].lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(entry["content"], encoding="utf-8")
    probe = "import node_agents.s3, node_agents.docker, node_agents.consul as c; print(c.__file__)"
    env = {"PYTHONPATH": str(tmp_path / AGENTS_DIR.lstrip("/")), "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert result.stdout.strip() == str(tmp_path / AGENTS_DIR.lstrip("/") / "node_agents" / "consul.py")


def test_agent_service_is_a_user_docker_service() -> None:
    ((name, service),) = agent_service(
        "drain-agent",
        "drain",
        ["--window", "300"],
        {"SWARM_HOST": "tcp://127.0.0.1:4000"},
        volumes=["/var/lib/x:/state"],
    ).items()
    assert name == "drain-agent"
    assert service["image"] == AGENT_IMAGE
    # No io.rancher.os.scope: user Docker; started after node-images pulled its image with retries.
    assert service["labels"] == {"io.rancher.os.after": "node-images"}
    assert service["command"] == ["python3", "-m", "node_agents.drain", "--window", "300"]
    assert f"PYTHONPATH={AGENTS_DIR}" in service["environment"]
    assert "SWARM_HOST=tcp://127.0.0.1:4000" in service["environment"]
    assert service["volumes"] == [f"{AGENTS_DIR}:{AGENTS_DIR}:ro", "/var/lib/x:/state"]
    assert (service["restart"], service["net"]) == ("always", "host")
    assert "net" not in agent_service("x", "y", host_network=False)["x"]
