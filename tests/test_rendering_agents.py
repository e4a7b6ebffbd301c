"""rendering.agents: the shipped modules are the package's code, run from where they land, and fit."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import jsonschema
import pytest
import yaml

from node_agents.image import AGENT_IMAGE
from rendering import agents
from rendering.agents import AGENTS_DIR, agent_files, agent_service, modules_needed
from rendering.yaml_text import decode_user_data, encode_user_data, finish

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "tests" / "data" / "rancheros-cloud-config.schema.json"
EVERY_MODULE = sorted(path.stem for path in (ROOT / "node_agents").glob("*.py"))


def _ship(entry_points: list[str], root: Path) -> Path:
    """Writes what user-data would write under `root`; returns the PYTHONPATH directory."""
    for entry in agent_files(entry_points):
        target = root / entry["path"].lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(entry["content"], encoding="utf-8")
    return root / AGENTS_DIR.lstrip("/")


def test_shipped_files_carry_no_docstrings_or_annotations() -> None:
    files = agent_files(["s3"])
    modules = ("__init__", "aws", "http", "imds", "runtime", "s3", "sigv4")
    assert [entry["path"] for entry in files] == [f"{AGENTS_DIR}/node_agents/{m}.py" for m in modules]
    for entry in files:
        assert (entry["permissions"], entry["owner"], "encoding" in entry) == ("0444", "root", False)
        for node in ast.walk(ast.parse(entry["content"])):
            if isinstance(node, ast.FunctionDef | ast.ClassDef | ast.Module):
                assert ast.get_docstring(node) is None
            if isinstance(node, ast.FunctionDef):
                assert node.returns is None and all(a.annotation is None for a in node.args.args)


def test_client_tests_pass_against_the_shipped_files(tmp_path: Path) -> None:
    """The code hosts get behaves like the repository's: the clients' tests, run against it."""
    shipped = _ship(EVERY_MODULE, tmp_path)
    env = {**os.environ, "PYTHONPATH": str(shipped)}
    # -P: no current directory on sys.path; append mode: the repository comes after the shipped files
    where = subprocess.run(
        [
            sys.executable,
            "-P",
            "-c",
            f"import sys; sys.path.append({str(ROOT)!r}); import node_agents.aws as m; print(m.__file__)",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.strip() == str(shipped / "node_agents" / "aws.py")
    tests = [f"tests/test_node_agents_{name}.py" for name in ("aws", "clients", "docker", "runtime")]
    result = subprocess.run(
        [sys.executable, "-P", "-m", "pytest", "-q", "-p", "no:cacheprovider", "--import-mode=append", *tests],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]


def test_only_imported_modules_are_shipped() -> None:
    assert modules_needed(["consul"]) == ["__init__", "consul", "http"]
    assert "docker" not in modules_needed(["s3"])


@pytest.mark.parametrize("module", EVERY_MODULE)
def test_rendered_user_data_round_trips_and_is_schema_valid(module: str) -> None:
    # One entry point per host document: no host carries every agent, and all of them exceed 16 KB.
    document = {"write_files": agent_files([module]), "rancher": {"services": agent_service("drain", module)}}
    text = finish(document, "test host")
    assert yaml.safe_load(decode_user_data(encode_user_data(text)).split("\n", 1)[1]) == document
    jsonschema.validate(document, yaml.safe_load(SCHEMA.read_text(encoding="utf-8")))


def test_code_rancheros_would_rewrite_is_refused() -> None:
    with (
        mock.patch.object(agents, "_source", return_value='ADDRESS = "$private_ipv4"\n'),
        pytest.raises(ValueError, match=r"\$private_ipv4"),
    ):
        agent_files(["x"])


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
