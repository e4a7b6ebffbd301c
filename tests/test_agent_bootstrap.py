"""node_agents/bootstrap.py executed the way nodes run it: a lone file, no node_agents on the path, fetching
the archive from (fake) S3 with the instance role's credentials and running an agent from it."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rendering.agents import agents_archive
from tests.fakes.agent_process import ROOT, AgentProcess, agent_env
from tests.fakes.aws import FakeAws
from tests.fakes.consul import FakeConsul
from tests.fakes.docker import FakeDocker
from tests.fakes.imds import FakeImds

BUCKET = "example-staging-docker-registry"
ARCHIVE = agents_archive()
DIGEST = hashlib.sha256(ARCHIVE).hexdigest()
KEY = f"node-agents/{DIGEST}.zip"


@pytest.fixture
def fakes() -> Iterator[tuple[FakeImds, FakeAws, FakeConsul, FakeDocker]]:
    with (
        FakeImds() as imds,
        FakeAws(buckets=[BUCKET]) as aws,
        FakeConsul() as consul,
        FakeDocker(swarm=False) as docker,
    ):
        aws.put(BUCKET, KEY, ARCHIVE)
        yield imds, aws, consul, docker
        assert aws.violations == [], "the fetch is signed as S3 expects"


def bootstrap(tmp: Path, fakes: tuple[FakeImds, FakeAws, FakeConsul, FakeDocker], digest: str = DIGEST) -> AgentProcess:
    imds, aws, consul, docker = fakes
    # No AWS keys in the environment: the role credentials come from instance metadata, as on a node.
    env = agent_env(
        imds.url,
        AWS_REGION=aws.region,
        AWS_ENDPOINT_URL=aws.url,
        AGENTS_URL=f"{aws.url}/{BUCKET}/node-agents/{digest}.zip",
        AGENTS_ARCHIVE_DIR=str(tmp),
        CONSUL_HTTP_ADDR=consul.url,
        DOCKER_HOST=docker.docker_host,
        DRAIN_GROUP="staging-web",
        DRAIN_HOOK="staging-web-drain",
        DRAIN_WINDOW_SECONDS="300",
        DRAIN_STATE=str(tmp / "state.json"),
        SWARM_AGENT_CONTAINER="swarm-agent",
    )
    del env["PYTHONPATH"]  # only the fetched archive provides node_agents
    # Alone in its directory, as user-data writes it (beside node_agents/http.py it would shadow `http`).
    script = tmp / "bootstrap.py"
    script.write_text((ROOT / "node_agents" / "bootstrap.py").read_text())
    agent = AgentProcess("bootstrap", ["drain"], env)
    agent.command = [sys.executable, str(script), "drain"]
    agent.start()
    return agent


def test_it_fetches_the_archive_once_and_runs_the_agent_from_it(
    tmp_path: Path, fakes: tuple[FakeImds, FakeAws, FakeConsul, FakeDocker]
) -> None:
    aws = fakes[1]
    agent = bootstrap(tmp_path, fakes)
    agent.wait_for(r"^drain: watching the lifecycle of i-0123456789abcdef0")
    assert (tmp_path / f"{DIGEST}.zip").read_bytes() == ARCHIVE
    agent.restart()
    agent.wait_for(r"watching the lifecycle", timeout=10)
    agent.stop()
    assert [c.action for c in aws.calls] == ["GetObject"], "a restart uses the archive already on the host"


def test_it_refuses_an_archive_with_another_digest(
    tmp_path: Path, fakes: tuple[FakeImds, FakeAws, FakeConsul, FakeDocker]
) -> None:
    fakes[1].put(BUCKET, f"node-agents/{'0' * 64}.zip", ARCHIVE)  # content that is not what its name says
    agent = bootstrap(tmp_path, fakes, digest="0" * 64)
    assert agent.wait() != 0
    assert "refusing to run it" in agent.output()
    assert not list(tmp_path.glob("*.zip"))
