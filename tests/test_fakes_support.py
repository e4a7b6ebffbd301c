"""The test plumbing agents' execution tests rely on: AgentProcess, FakeAws's model checks beyond the
query protocol, and the HTTP client over a unix socket (how agents reach /var/run/docker.sock)."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from node_agents.aws import S3, Aws, AwsError
from node_agents.http import HttpClient
from node_agents.runtime import Clock
from node_agents.s3 import S3Client
from tests.fakes.agent_process import AgentProcess, agent_env, run_agent
from tests.fakes.aws import FakeAws

PROBE = """
import os, signal, sys, time
# os.write, not print: the signal may land while the main code is still inside print (a reentrant call)
signal.signal(signal.SIGTERM, lambda *_: (os.write(1, b"probe: terminated\\n"), os._exit(3)))
env = os.environ.get
print(f"probe: started {env('IMDS_ENDPOINT')} {env('AWS_ACCESS_KEY_ID')} {env('HOME')}", flush=True)
if sys.argv[1:] == ["once"]:
    sys.exit(0)
while True:
    time.sleep(0.05)
"""


@pytest.fixture
def probe_dir(tmp_path: Path) -> Path:
    """A stand-in package `node_agents` with a `probe` agent (run with cwd and PYTHONPATH here)."""
    package = tmp_path / "node_agents"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "probe.py").write_text(PROBE)
    return tmp_path


def test_agent_process_runs_restarts_and_stops(probe_dir: Path) -> None:
    with FakeAws() as aws:
        env = agent_env("http://127.0.0.1:1", aws, PYTHONPATH=str(probe_dir))
        once = run_agent("probe", ["once"], env, cwd=probe_dir)
        assert once.stdout.startswith("probe: started http://127.0.0.1:1 AKIA"), once.stderr
        with AgentProcess("probe", [], env, cwd=probe_dir) as agent:
            line = agent.wait_for(r"probe: started")
            assert line.endswith(" None")  # nothing leaks in from the test runner's environment (HOME)
            agent.restart()
            agent.wait_for(r"started", timeout=10)
            assert sum("started" in line for line in agent.lines) == 2
        assert agent.returncode == 3 and agent.lines[-1] == "probe: terminated"
        with AgentProcess("probe", [], env, cwd=probe_dir) as idle, pytest.raises(AssertionError, match="no match"):
            idle.wait_for("never", timeout=0.05)


def _client() -> Aws:
    return Aws(agent="test", clock=Clock(scale=0.001))


def test_s3_and_cloudwatch_mistakes_are_violations(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeAws(buckets=["b"]) as aws:
        for name, value in aws.env().items():
            monkeypatch.setenv(name, value)
        client = _client()
        with pytest.raises(AwsError) as raised:
            client.send(S3, "bad", "PUT", "/b/k", body=b"x", headers={"x-amz-bogus": "1"})
        assert raised.value.code == "InvalidArgument" and "x-amz-bogus" in aws.violations[-1]
        with pytest.raises(AwsError):
            client.send(S3, "bad", "GET", "/b?list-type=2&max-keys=many")
        assert "max-keys" in aws.violations[-1]
        with pytest.raises(AwsError) as raised:
            client.call("cloudwatch", "PutMetricData", {"MetricData": [{"MetricName": "m", "Value": 1}]})
        assert raised.value.code == "MissingParameter" and "Namespace" in aws.violations[-1]
        with pytest.raises(AwsError) as raised:
            S3Client(client).get_object("nobucket", "k")
        assert raised.value.code == "NoSuchBucket"
        assert len(aws.violations) == 3


class _Echo(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"path": "%s"}' % self.path.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def unix_socket(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "docker.sock"
    server = socketserver.UnixStreamServer(str(path), _Echo)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield path
    server.shutdown()
    server.server_close()


def test_http_over_a_unix_socket(unix_socket: Path) -> None:
    answer = HttpClient(f"unix://{unix_socket}").get_json("/v1.24/info", query={"a": "1"})
    assert answer == {"path": "/v1.24/info?a=1"}
