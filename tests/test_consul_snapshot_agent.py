"""The Consul snapshot agent, executed as a node runs it (`python -m node_agents.consul_snapshot`) against
FakeConsul, FakeImds (its identity: instance id, raft address) and FakeAws's S3 (every call checked
against botocore's model)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import sys
import tarfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from node_agents.consul_snapshot import MARKER_KEY, interval_key, verify
from rendering.agents import AgentArchive, agents_archive
from rendering.consul_server import CONFIG_DIR, SnapshotSpec, render_consul_server
from tests.fakes.agent_process import AgentProcess, agent_env, run_agent
from tests.fakes.aws import FakeAws
from tests.fakes.consul import FakeConsul, snapshot_of
from tests.fakes.imds import FakeImds
from tests.test_rendering_consul import spec as consul_spec

BUCKET = "example-staging-docker-registry"
PREFIX = "consul-snapshots/"
KMS_KEY = "arn:aws:kms:eu-west-1:123456789012:key/5f0c9a2e-8b1d-4c7e-9a36-2d4b8e1f0c77"
ME, OTHER = "10.30.0.10", "10.30.0.11"
LEADER = f"{ME}:8300"  # FakeConsul's default leader: the server under test leads unless a test says otherwise
READY = json.dumps({"state": "ready", "node": "i-0aaaaaaaaaaaaaaaa", "since": 0, "snapshot": None}).encode()
NETWORK = "docker/network/v1.0/network/3f2a"  # an overlay network definition: what a restore must bring back
DAY = 86400.0


def _args(command: str, interval: float = 300, *extra: str) -> list[str]:
    return [command, "--bucket", BUCKET, "--prefix", PREFIX, "--interval", str(interval), *extra]


@contextmanager
def _server(address: str = ME, instance_id: str = "i-0123456789abcdef0") -> Iterator[FakeImds]:
    with FakeImds(instance_id=instance_id, local_ipv4=address, role="consul-server") as imds:
        yield imds


def _env(imds: FakeImds, aws: FakeAws, consul: FakeConsul) -> dict[str, str]:
    return agent_env(imds.url, aws, CONSUL_HTTP_ADDR=consul.url, AGENT_TIME_SCALE="0.001")


def _marker(consul: FakeConsul) -> dict[str, object]:
    document: dict[str, object] = json.loads(consul.kv[MARKER_KEY])
    return document


def _stored(aws: FakeAws, *snapshots: tuple[float, bytes]) -> list[str]:
    keys = [interval_key(PREFIX, when) for when, _ in snapshots]
    for key, (_, body) in zip(keys, snapshots, strict=True):
        aws.put(BUCKET, key, body)
    return keys


def _tampered(snapshot: bytes) -> bytes:
    """The same archive with other state.bin bytes: gzip and tar are fine, SHA256SUMS no longer matches."""
    out = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(gzip.decompress(snapshot))) as source,
        tarfile.open(fileobj=out, mode="w") as tar,
    ):
        for member in source:
            data = source.extractfile(member).read()  # type: ignore[union-attr]
            data = data.replace(b"3f2a", b"ffff") if member.name == "state.bin" else data
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    return gzip.compress(out.getvalue())


def test_first_boot_without_snapshots_starts_empty_and_marks_the_cluster() -> None:
    with FakeConsul() as consul, FakeAws(buckets=[BUCKET]) as aws, _server() as imds:
        result = run_agent("consul_snapshot", _args("restore"), _env(imds, aws, consul))
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"no snapshot under s3://{BUCKET}/{PREFIX}: a new cluster starts empty" in result.stdout
        assert consul.restores == []
        assert _marker(consul) | {"since": 0} == {
            "state": "ready",
            "node": "i-0123456789abcdef0",
            "since": 0,
            "snapshot": None,
        }
        [listing] = aws.calls_of("ListObjectsV2")
        assert listing["Prefix"] == PREFIX and aws.violations == []


def test_an_empty_cluster_gets_the_newest_snapshot() -> None:
    now = time.time()
    old, newer, newest = ({NETWORK: f"v{n}".encode(), MARKER_KEY: READY} for n in (1, 2, 3))
    with FakeConsul() as consul, FakeAws(buckets=[BUCKET], s3_page_size=2) as aws, _server() as imds:
        # Stored out of order, and across pages: the agent sorts by the interval in the key.
        keys = _stored(
            aws, (now - DAY, snapshot_of(newer)), (now, snapshot_of(newest)), (now - 2 * DAY, snapshot_of(old))
        )
        result = run_agent("consul_snapshot", _args("restore"), _env(imds, aws, consul))
        assert result.returncode == 0, result.stdout + result.stderr
        assert consul.restores == [newest]
        assert consul.kv[NETWORK] == b"v3"
        assert _marker(consul)["snapshot"] == keys[1] and _marker(consul)["state"] == "ready"
        assert f"restored s3://{BUCKET}/{keys[1]}" in result.stdout
        assert aws.violations == []


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda body: body[: len(body) // 2], "not a gzip'd tar archive"),
        (_tampered, "state.bin does not match its SHA-256 in SHA256SUMS"),
        (lambda body: b"", "not a gzip'd tar archive"),
    ],
)
def test_a_corrupt_newest_snapshot_falls_back_to_the_previous_one_loudly(damage, reason) -> None:  # type: ignore[no-untyped-def]
    now = time.time()
    good, latest = ({NETWORK: b"good", MARKER_KEY: READY}, {NETWORK: b"latest", MARKER_KEY: READY})
    with FakeConsul() as consul, FakeAws(buckets=[BUCKET]) as aws, _server() as imds:
        previous, corrupt = _stored(aws, (now - 300, snapshot_of(good)), (now, damage(snapshot_of(latest))))
        result = run_agent("consul_snapshot", _args("restore"), _env(imds, aws, consul))
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"ERROR: snapshot s3://{BUCKET}/{corrupt} is CORRUPT ({reason}" in result.stdout
        assert "falling back to the previous snapshot" in result.stdout
        assert consul.restores == [good] and _marker(consul)["snapshot"] == previous


def test_when_every_snapshot_is_corrupt_the_cluster_starts_empty_and_says_so() -> None:
    with FakeConsul() as consul, FakeAws(buckets=[BUCKET]) as aws, _server() as imds:
        _stored(aws, (time.time(), b"garbage"))
        result = run_agent("consul_snapshot", _args("restore"), _env(imds, aws, consul))
        assert result.returncode == 0
        assert "ERROR: none of the 1 snapshots could be restored; THE CLUSTER STARTS EMPTY" in result.stdout
        assert consul.restores == [] and _marker(consul)["snapshot"] is None


def test_a_server_joining_a_running_cluster_never_restores() -> None:
    live = {NETWORK: b"live", MARKER_KEY: READY, "docker/nodes/10.30.1.23:2375": b"10.30.1.23:2375"}
    with FakeConsul(kv=live) as consul, FakeAws(buckets=[BUCKET]) as aws, _server() as imds:
        _stored(aws, (time.time(), snapshot_of({NETWORK: b"older", MARKER_KEY: READY})))
        result = run_agent("consul_snapshot", _args("restore"), _env(imds, aws, consul))
        assert result.returncode == 0
        assert "nothing to restore" in result.stdout
        assert consul.restores == [] and consul.kv == live
        assert aws.calls_of("GetObject") == []


def test_servers_of_an_empty_cluster_restore_once_between_them() -> None:
    newest = {NETWORK: b"v1", MARKER_KEY: READY}
    with FakeConsul() as consul, FakeAws(buckets=[BUCKET]) as aws:
        _stored(aws, (time.time(), snapshot_of(newest)))
        with _server(ME, "i-0aaaaaaaaaaaaaaaa") as first, _server(OTHER, "i-0bbbbbbbbbbbbbbbb") as second:
            agents = [
                AgentProcess("consul_snapshot", _args("restore"), _env(imds, aws, consul)) for imds in (first, second)
            ]
            for agent in agents:
                agent.start()
            assert [agent.wait() for agent in agents] == [0, 0], [agent.output() for agent in agents]
        assert consul.restores == [newest]
        assert sum("restored s3://" in agent.output() for agent in agents) == 1


def test_restore_waits_for_a_leader() -> None:
    with FakeConsul(leader=None) as consul, FakeAws(buckets=[BUCKET]) as aws, _server() as imds:
        _stored(aws, (time.time(), snapshot_of({NETWORK: b"v1", MARKER_KEY: READY})))
        with AgentProcess("consul_snapshot", _args("restore"), _env(imds, aws, consul)) as agent:
            agent.wait_for("waiting: the cluster has no leader yet")
            assert consul.restores == []
            consul.set_leader(LEADER)
            assert agent.wait() == 0
        assert consul.kv[NETWORK] == b"v1"


def test_save_stores_the_verified_snapshot_under_its_interval_with_the_kms_key(tmp_path: Path) -> None:
    server_config = tmp_path / "server.json"
    server_config.write_text(json.dumps({"autopilot": {"min_quorum": 3, "server_stabilization_time": "30s"}}))
    live = {NETWORK: b"live", MARKER_KEY: READY}
    with FakeConsul(kv=live) as consul, FakeAws(buckets=[BUCKET]) as aws, _server() as imds:
        before = time.time()
        extra = ("--kms-key-id", KMS_KEY, "--server-config", str(server_config))
        result = run_agent("consul_snapshot", _args("save", 300, *extra), _env(imds, aws, consul))
        after = time.time()
        assert result.returncode == 0, result.stdout + result.stderr
        [put] = aws.calls_of("PutObject")
        assert put["Key"] in {interval_key(PREFIX, t - t % 300) for t in (before, after)}
        assert (put["ServerSideEncryption"], put["SSEKMSKeyId"]) == ("aws:kms", KMS_KEY)
        stored = aws.latest(BUCKET, put["Key"])
        assert stored is not None and verify(stored.body) > 0
        assert consul.restores == [] and consul.snapshots_taken == 1
        # Autopilot settings reach a cluster that bootstrapped without them.
        assert (consul.autopilot["MinQuorum"], consul.autopilot["ServerStabilizationTime"]) == (3, "30s")
        assert aws.violations == []


def test_a_follower_saves_nothing() -> None:
    with FakeConsul(leader=f"{OTHER}:8300", kv={MARKER_KEY: READY}) as consul, FakeAws(buckets=[BUCKET]) as aws:
        with _server() as imds:
            result = run_agent("consul_snapshot", _args("save"), _env(imds, aws, consul))
        assert result.returncode == 3
        assert f"not the leader ({OTHER}:8300)" in result.stdout
        assert aws.calls_of("PutObject") == [] and consul.snapshots_taken == 0


def test_an_uninitialised_cluster_is_never_saved() -> None:
    """Its snapshot would become the newest, and the next restore would bring back an empty cluster."""
    with FakeConsul(kv={NETWORK: b"x"}) as consul, FakeAws(buckets=[BUCKET]) as aws, _server() as imds:
        result = run_agent("consul_snapshot", _args("save"), _env(imds, aws, consul))
        assert result.returncode == 3
        assert "ERROR: the cluster is not initialised" in result.stdout
        assert aws.calls_of("PutObject") == []


def test_s3_throttling_is_retried() -> None:
    with FakeConsul(kv={MARKER_KEY: READY}) as consul, FakeAws(buckets=[BUCKET]) as aws, _server() as imds:
        aws.throttle(2, action="PutObject")
        result = run_agent("consul_snapshot", _args("save"), _env(imds, aws, consul))
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.count("SlowDown") == 2 and "retrying" in result.stdout
        assert len(aws.calls_of("PutObject")) == 3
        [key] = aws.objects[BUCKET]
        assert len(aws.objects[BUCKET][key]) == 1


def test_a_leader_change_between_snapshots_keeps_one_snapshot_per_interval() -> None:
    interval = 1.0  # wall-clock seconds (never scaled); keys name whole seconds, so no shorter
    with (
        FakeConsul(kv={MARKER_KEY: READY, NETWORK: b"v1"}) as consul,
        FakeAws(buckets=[BUCKET]) as aws,
        _server(ME, "i-0aaaaaaaaaaaaaaaa") as first,
        _server(OTHER, "i-0bbbbbbbbbbbbbbbb") as second,
    ):
        agents = [
            AgentProcess("consul_snapshot", _args("run", interval), _env(i, aws, consul)) for i in (first, second)
        ]
        for agent in agents:
            agent.start()
        try:
            agents[0].wait_for("saved s3://", timeout=3 * interval + 10)
            # Change leaders at the next mid-interval, well away from the boundaries where both servers check.
            time.sleep((interval / 2 - time.time() % interval) % interval)
            consul.set_leader(f"{OTHER}:8300")
            consul.kv[NETWORK] = b"v2"
            agents[1].wait_for("saved s3://", timeout=3 * interval + 10)
            agents[0].wait_for(r"not the leader \(10\.30\.0\.11:8300\)", timeout=3 * interval + 10)
        finally:
            for agent in agents:
                agent.kill()  # no last snapshot on the way out: this test counts the interval ones
    saved = [[line.split()[2] for line in agent.lines if " saved s3://" in line] for agent in agents]
    assert saved[0] and saved[1]
    assert max(saved[0]) < min(saved[1]), "the old leader saved nothing after the change"
    assert all(len(versions) == 1 for versions in aws.objects[BUCKET].values()), "one snapshot per interval"


def test_sigterm_saves_one_last_snapshot() -> None:
    """A planned replacement (staging's lone server) then loses nothing written before it stopped."""
    with FakeConsul(kv={MARKER_KEY: READY, NETWORK: b"last"}) as consul, FakeAws(buckets=[BUCKET]) as aws:
        with _server() as imds, AgentProcess("consul_snapshot", _args("run", DAY), _env(imds, aws, consul)) as agent:
            agent.wait_for("nothing to restore")
            agent.stop()
            assert agent.returncode == 0
        [put] = aws.calls_of("PutObject")
        stored = aws.latest(BUCKET, put["Key"])
        assert stored is not None and verify(stored.body) > 0
        assert "stopping: one last snapshot" in agent.output()


def test_a_stalled_claim_is_taken_over() -> None:
    """An agent that died mid-restore left its claim; after CLAIM_TIMEOUT another server restores."""
    stale = json.dumps({"state": "restoring", "node": "i-0dead", "since": time.time() - 3600}).encode()
    with FakeConsul(kv={MARKER_KEY: stale}) as consul, FakeAws(buckets=[BUCKET]) as aws, _server() as imds:
        _stored(aws, (time.time(), snapshot_of({NETWORK: b"v1", MARKER_KEY: READY})))
        result = run_agent("consul_snapshot", _args("restore"), _env(imds, aws, consul))
        assert result.returncode == 0, result.stdout
        assert consul.kv[NETWORK] == b"v1" and _marker(consul)["node"] == "i-0123456789abcdef0"


def test_the_rendered_service_runs_from_the_archive_the_user_data_fetches(tmp_path: Path) -> None:
    """The command, arguments and files the Consul servers' user-data carries, run as RancherOS would run
    them: the bootstrap from write_files, alone, fetching the stored archive; the server config where the
    service mounts it."""
    content = agents_archive()
    key = f"node-agents/{hashlib.sha256(content).hexdigest()}.zip"
    agents = AgentArchive(f"https://{BUCKET}.s3.eu-west-1.amazonaws.com/{key}", "eu-west-1")
    spec = consul_spec(bootstrap_expect=1, snapshots=SnapshotSpec(BUCKET, PREFIX, 300, KMS_KEY), agents=agents)
    document = yaml.safe_load(render_consul_server(spec))
    for entry in document["write_files"]:
        target = tmp_path / entry["path"].lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(entry["content"])
    service = document["rancher"]["services"]["consul-snapshot"]
    environment = dict(item.split("=", 1) for item in service["environment"])
    assert environment["AGENTS_URL"] == agents.url
    _, bootstrap, *command = service["command"]
    mounted = command.index("--server-config") + 1
    command[mounted] = str(tmp_path / CONFIG_DIR.lstrip("/") / "server.json")
    with FakeConsul() as consul, FakeAws(buckets=[BUCKET]) as aws, _server() as imds:
        aws.put(BUCKET, key, content)
        _stored(aws, (time.time() - 600, snapshot_of({NETWORK: b"kept", MARKER_KEY: READY})))
        env = _env(imds, aws, consul) | {
            "AGENTS_URL": f"{aws.url}/{BUCKET}/{key}",
            "AGENTS_ARCHIVE_DIR": str(tmp_path),
            "AWS_REGION": environment["AWS_REGION"],
        }
        del env["PYTHONPATH"]  # only the fetched archive provides node_agents
        agent = AgentProcess("consul_snapshot", command, env, cwd=tmp_path)
        agent.command = [sys.executable, str(tmp_path / bootstrap.lstrip("/")), *command]
        with agent:
            agent.wait_for("cluster initialised")
            agent.stop()
        assert agent.returncode == 0, agent.output()
        assert "Traceback" not in agent.output()
        assert consul.kv[NETWORK] == b"kept"
        [put] = aws.calls_of("PutObject")
        assert put["SSEKMSKeyId"] == KMS_KEY and put["Key"].startswith(PREFIX)
        assert consul.autopilot["MinQuorum"] == 1 and consul.autopilot["LastContactThreshold"] == "1s"
        assert aws.violations == []
