"""Run the nodes' boot scripts as real processes: busybox sh, real iptables, network namespaces, a fake clock.

Each script runs as it does on a node, unchanged: `busybox sh <script>` in its own mount and UTS namespace
(optionally inside a network namespace), where /dev/console and /etc/hosts are files of the test and /run
holds only what the test put in $SANDBOX/run, so the script writes nothing on this machine. Only what
cannot run here is a stub on PATH: `ros` (RancherOS's CLI), `docker` (user Docker's CLI) and `poweroff`;
each records its calls. `date +%s` and `sleep` read and advance a clock file, so minutes of retries take
no time and the test decides what time it is. `iptables` is the real legacy xtables binary (RancherOS's
kind); `wget` is busybox's, with its -T applied by coreutils' `timeout` (Debian's busybox 1.35 crashes on -T).

Without root, namespaces or the Debian packages listed in .ci/debian-packages.txt these tests skip with
the reason; under CI=true they fail instead.
"""

from __future__ import annotations

import functools
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest

TOOLS = ("busybox", "iptables-legacy", "ip", "unshare")
APPLETS = ("hostname", "mktemp", "cat", "grep", "printf", "mkdir", "timeout")
CLOCK_START = 1_000_000

# `date +%s` from the clock file; `sleep N` adds N to it and returns at once. The clock is read with the
# shell's `read`, not `cat`: retry loops call these hundreds of times per test, a process each.
_DATE = 'if [ "$1" = "+%s" ]; then read -r now <"$SANDBOX/clock"; echo "$now"; else exec busybox date "$@"; fi'
_SLEEP = 'echo "$1" >>"$SANDBOX/sleeps"; read -r now <"$SANDBOX/clock"; echo $((now + $1)) >"$SANDBOX/clock"'
_RECORD = 'printf "%s\\n" "$*" >>"$SANDBOX/calls.$(basename "$0")"'
# Debian's busybox 1.35 wget segfaults whenever -T is given; the same wget, with -T applied by coreutils'
# `timeout` (busybox's forks a watcher per fetch that outlives it, waking every second until it notices).
_WGET = """t=
for a do
  shift
  if [ "$t" = next ]; then t=$a; continue; fi
  if [ "$a" = -T ]; then t=next; continue; fi
  set -- "$@" "$a"
done
exec /usr/bin/timeout "${t:-30}" busybox wget "$@"
"""


def require_sandbox() -> None:
    """Skip (fail under CI=true) unless scripts can run here as root in namespaces with the real tools."""
    problem = _missing()
    if problem is None:
        return
    message = f"boot-script execution tests need {problem} (install .ci/debian-packages.txt, run as root)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@functools.cache  # the machine does not change during a run; the probe is a process per test otherwise
def _missing() -> str | None:
    if os.geteuid() != 0:
        return "root"
    absent = [tool for tool in TOOLS if shutil.which(tool) is None]
    if absent:
        return ", ".join(absent)
    probe = subprocess.run(["unshare", "--net", "--mount", "--uts", "true"], capture_output=True, check=False)
    return None if probe.returncode == 0 else f"unshare (it said {probe.stderr.decode().strip()!r})"


class Sandbox:
    """A folder with the shims, the console and hosts files, the clock and every stub's recorded calls."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.bin = root / "bin"
        self.bin.mkdir(parents=True)
        busybox = shutil.which("busybox")
        assert busybox is not None
        for applet in APPLETS:
            (self.bin / applet).symlink_to(busybox)
        (self.bin / "iptables").symlink_to(str(shutil.which("iptables-legacy")))
        for name in ("ros", "poweroff", "docker"):
            self.stub(name, _RECORD)
        self.stub("wget", _WGET)
        self.stub("date", _DATE)
        self.stub("sleep", _SLEEP)
        (root / "console").write_text("")
        (root / "hosts").write_text("127.0.0.1 localhost\n")
        (root / "clock").write_text(f"{CLOCK_START}\n")
        (root / "run").mkdir()  # copied into the script's empty /run
        (root / "run-after").mkdir()  # what the script left in /run

    def stub(self, name: str, body: str) -> None:
        """An executable `name` on PATH running `body` (sh; $SANDBOX is this folder)."""
        path = self.bin / name
        path.unlink(missing_ok=True)
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)

    def run(
        self, script: str, *, netns: str | None = None, env: Mapping[str, str] | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        (self.root / "script").write_text(script)
        setup = (
            'mount --bind "$SANDBOX/console" /dev/console && mount --bind "$SANDBOX/hosts" /etc/hosts && '
            'mount -t tmpfs tmpfs /run && cp -a "$SANDBOX/run/." /run/ && '
            'busybox sh "$SANDBOX/script"; rc=$?; cp -a /run/. "$SANDBOX/run-after/"; exit $rc'
        )
        command = ["unshare", "--mount", "--uts", "--propagation", "private", "busybox", "sh", "-c", setup]
        if netns is not None:
            command = ["ip", "netns", "exec", netns, *command]
        environment = {"PATH": f"{self.bin}:/usr/sbin:/usr/bin:/sbin:/bin", "SANDBOX": str(self.root), **(env or {})}
        return subprocess.run(command, env=environment, capture_output=True, text=True, timeout=timeout, check=False)

    def read(self, name: str) -> str:
        path = self.root / name
        return path.read_text() if path.exists() else ""

    def calls(self, stub: str) -> list[str]:
        return self.read(f"calls.{stub}").splitlines()

    @property
    def seconds(self) -> int:
        """Fake seconds passed since the sandbox was made."""
        return int(self.read("clock")) - CLOCK_START


@contextmanager
def namespaces(*roles: str) -> Iterator[dict[str, str]]:
    """Named network namespaces (`ip netns`), one per role, removed afterwards; loopback is up in each."""
    suffix = secrets.token_hex(3)
    names = {role: f"h3-{role}-{suffix}" for role in roles}
    try:
        for name in names.values():
            sh(f"ip netns add {name}")
            sh("ip link set lo up", netns=name)
        yield names
    finally:
        for name in names.values():
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


def sh(command: str, *, netns: str | None = None) -> str:
    """Run a setup command (in `netns`); its output, or an assertion naming what failed."""
    argv = ["sh", "-c", command] if netns is None else ["ip", "netns", "exec", netns, "sh", "-c", command]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{command!r} in {netns}: {result.stderr}"
    return result.stdout
