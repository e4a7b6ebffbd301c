"""rendering.agents for Swarm nodes: the archive holds the package's code and imports where it lands; user-data
carries only the bootstrap that fetches it."""

from __future__ import annotations

import ast
import io
import subprocess
import sys
import zipfile
from pathlib import Path

import jsonschema
import yaml

from node_agents.bootstrap import ARCHIVE_DIR
from node_agents.image import AGENT_IMAGE
from rendering.agents import (
    AGENTS_DIR,
    BOOTSTRAP,
    AgentArchive,
    agents_archive,
    bootstrap_files,
    fetched_agent_service,
    shipped_code,
)

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "tests" / "data" / "rancheros-cloud-config.schema.json"
ARCHIVE = AgentArchive(f"https://bucket.s3.eu-west-1.amazonaws.com/node-agents/{'b' * 64}.zip", "eu-west-1")


def test_archive_holds_the_shipped_code_and_is_reproducible() -> None:
    archive = zipfile.ZipFile(io.BytesIO(agents_archive(["s3"])))
    names = sorted(archive.namelist())
    assert names == [f"node_agents/{m}.py" for m in ("__init__", "aws", "http", "imds", "runtime", "s3", "sigv4")]
    for name in names:
        assert archive.read(name).decode() == shipped_code((ROOT / name).read_text(encoding="utf-8"))
    assert agents_archive(["docker", "consul"]) == agents_archive(["consul", "docker"])


def test_archive_imports_where_it_lands(tmp_path: Path) -> None:
    archive = tmp_path / "node_agents.zip"
    archive.write_bytes(agents_archive(["s3", "docker", "consul"]))
    probe = "import node_agents.s3, node_agents.docker, node_agents.consul as c; print(c.__file__)"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        env={"PYTHONPATH": str(archive), "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    assert result.stdout.strip().startswith(str(archive))


def test_bootstrap_and_fetched_service_render_schema_valid() -> None:
    (entry,) = bootstrap_files()
    assert (entry["path"], entry["permissions"], "encoding" in entry) == (BOOTSTRAP, "0444", False)
    source = (ROOT / "node_agents" / "bootstrap.py").read_text(encoding="utf-8")
    assert ast.dump(ast.parse(entry["content"])) == ast.dump(ast.parse(shipped_code(source)))
    services = fetched_agent_service("drain", "drain", ARCHIVE, {"X": "1"}, volumes=["/x:/y"])
    ((name, service),) = services.items()
    assert name == "drain" and service["image"] == AGENT_IMAGE
    assert service["labels"]["io.rancher.os.after"] == "node-images", "its image is pulled with retries first"
    assert service["command"] == ["python3", BOOTSTRAP, "drain"]
    assert f"AGENTS_URL={ARCHIVE.url}" in service["environment"] and "X=1" in service["environment"]
    assert service["volumes"] == [f"{AGENTS_DIR}:{AGENTS_DIR}:ro", f"{ARCHIVE_DIR}:{ARCHIVE_DIR}", "/x:/y"]
    assert (service["restart"], service["net"]) == ("always", "host")
    document = {"write_files": bootstrap_files(), "rancher": {"services": services}}
    jsonschema.validate(document, yaml.safe_load(SCHEMA.read_text(encoding="utf-8")))
