"""Running a node agent the way a node runs it: `python -m node_agents.<module>` as a real process.

    env = agent_env(imds.url, aws, AGENT_TIME_SCALE="0.01", DOCKER_HOST=swarm.docker_host)
    with AgentProcess("drain", ["--window", "300"], env) as agent:
        agent.wait_for(r"left discovery")      # a regex over its stdout lines, with a timeout
        agent.restart()                        # SIGKILL and start again: "act once, resume" tests
    assert agent.returncode == 0

    result = run_agent("consul_snapshot", ["save"], env)   # one-shot: waits, returns CompletedProcess

The child gets ONLY the environment `agent_env` builds (nothing leaks in from the test runner's
AWS_* or DOCKER_HOST), the venv's interpreter, and the repository on PYTHONPATH. Compiled modules go to
a temporary folder of this test process (never into the repository), so only the first agent compiles.
"""

from __future__ import annotations

import atexit
import functools
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Self

from tests.fakes.aws import FakeAws

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 30.0


def agent_env(imds_url: str | None = None, aws: FakeAws | None = None, **extra: str) -> dict[str, str]:
    """A clean environment for an agent: IMDS_ENDPOINT, the fake AWS endpoint with static credentials
    (omit `aws` and serve role credentials from FakeImds to exercise that path), and `extra`."""
    # The bytecode the test process already cached (`dev.py` sets a prefix under .venv), else a session's own.
    pycache = os.environ.get("PYTHONPYCACHEPREFIX") or _pycache()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT), "PYTHONPYCACHEPREFIX": pycache}
    if imds_url:
        env["IMDS_ENDPOINT"] = imds_url
    if aws:
        env.update(aws.env())
    env.update(extra)
    return env


@functools.cache
def _pycache() -> str:
    path = tempfile.mkdtemp(prefix="agents-pycache-")
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def run_agent(
    module: str, args: list[str], env: dict[str, str], *, timeout: float = TIMEOUT, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", f"node_agents.{module}", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class AgentProcess:
    """A long-running agent; its stdout and stderr lines are collected in `lines` as they come."""

    def __init__(self, module: str, args: list[str], env: dict[str, str], *, cwd: Path = ROOT) -> None:
        self.command = [sys.executable, "-m", f"node_agents.{module}", *args]
        self.env = env
        self.cwd = cwd
        self.lines: list[str] = []
        self._started_at = 0  # index in `lines` where the current run's output begins
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._changed = threading.Condition()

    def start(self) -> None:
        with self._changed:
            self._started_at = len(self.lines)
        self._process = subprocess.Popen(
            self.command, env=self.env, cwd=self.cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self._reader = threading.Thread(target=self._read, args=(self._process,), daemon=True)
        self._reader.start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def returncode(self) -> int | None:
        return None if self._process is None else self._process.poll()

    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, pattern: str, *, timeout: float = TIMEOUT) -> str:
        """The first line of the current run (since the last start or restart), printed already or to come,
        that matches `pattern`; AssertionError with the output on timeout or if the agent exits first."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines[self._started_at :]:
                    if regex.search(line):
                        return line
                exited = self.returncode is not None and not (self._reader and self._reader.is_alive())
                remaining = deadline - time.monotonic()
                if exited or remaining <= 0:
                    state = f"exited {self.returncode}" if exited else f"no match in {timeout}s"
                    raise AssertionError(f"{pattern!r}: {state}; output:\n{self.output()}")
                self._changed.wait(min(remaining, 0.1))

    def wait(self, *, timeout: float = TIMEOUT) -> int:
        assert self._process is not None
        code = self._process.wait(timeout=timeout)
        if self._reader:
            self._reader.join(timeout=5)
        if self._process.stdout is not None:
            self._process.stdout.close()
        return code

    def kill(self) -> None:
        """SIGKILL, like a container killed mid-action."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self.wait()

    def stop(self, *, timeout: float = 10.0) -> None:
        """SIGTERM (what `docker stop` sends), then SIGKILL after `timeout`."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self) -> None:
        """Kill and start again with the same command and environment (output keeps accumulating)."""
        self.kill()
        self.start()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
