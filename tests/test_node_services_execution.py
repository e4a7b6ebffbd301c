"""node-images and node-health, executed: the rendered scripts under busybox sh with a fake clock and a
`docker` stub whose pulls and containers the test controls (tests/sandbox.py)."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.rancheros_fleet import WARMUP_SECONDS
from node_agents.image import AGENT_IMAGE
from rendering.node_services import (
    DOCKER_WAIT_SECONDS,
    HEALTH_DEADLINE_SECONDS,
    HEALTH_INTERVAL_SECONDS,
    PULL_ATTEMPTS,
    PULL_FIRST_DELAY_SECONDS,
)
from rendering.swarm_node import render_swarm_node
from tests.sandbox import CLOCK_START, Sandbox, require_sandbox
from tests.test_rendering_swarm_node import spec

# `docker` as user Docker's CLI answers the scripts. Files in $SANDBOX: images (present images, one a
# line), pull-failures (pulls left to fail), docker-down (no daemon), containers/<name> ("<running>
# <restarts>"), containers/<name>.crashing (restarts on every look), containers/<name>.from (exists from
# that clock value on). `inspect` reads with the shell's `read`, not `cat`: node-health runs it hundreds of
# times per test, and a process per read was most of the test's time.
DOCKER = r"""printf "%s\n" "$*" >>"$SANDBOX/calls.docker"
case "$1" in
  version) [ ! -e "$SANDBOX/docker-down" ] ;;
  image) grep -qxF "$3" "$SANDBOX/images" 2>/dev/null ;;
  pull)
    left=$(cat "$SANDBOX/pull-failures" 2>/dev/null || echo 0)
    if [ "$left" -gt 0 ]; then
      echo $((left - 1)) >"$SANDBOX/pull-failures"
      echo "toomanyrequests: rate limit" >&2
      exit 1
    fi
    echo "$2" >>"$SANDBOX/images" ;;
  inspect)
    state="$SANDBOX/containers/$4"
    [ -f "$state" ] || exit 1
    if [ -f "$state.from" ]; then
      read -r now <"$SANDBOX/clock"
      read -r from <"$state.from"
      [ "$now" -ge "$from" ] || exit 1
    fi
    read -r running restarts <"$state"
    if [ -e "$state.crashing" ]; then
      restarts=$((restarts + 1))
      echo "$running $restarts" >"$state"
    fi
    echo "$running $restarts" ;;
  *) exit 2 ;;
esac"""


@functools.cache  # rendered once per kind of node, not once per test
def _scripts(manager: bool) -> dict[str, str]:
    node = spec(swarm_manager=manager, group="managers" if manager else "web")
    document: dict[str, Any] = yaml.safe_load(render_swarm_node(node))
    return {Path(f["path"]).name: f["content"] for f in document["write_files"] if "container" in f}


@pytest.fixture
def box(tmp_path: Path) -> Sandbox:
    require_sandbox()
    sandbox = Sandbox(tmp_path)
    sandbox.stub("docker", DOCKER)
    (tmp_path / "containers").mkdir()
    # Every Swarm node also runs the drain agent; these tests are about the Swarm services beside it.
    (tmp_path / "images").write_text(f"{AGENT_IMAGE}\n")
    (tmp_path / "containers" / "drain").write_text("true 0\n")
    return sandbox


def _backoff(failures: int) -> list[int]:
    return [PULL_FIRST_DELAY_SECONDS * 2**i for i in range(failures)]


def test_a_failed_pull_is_retried_with_backoff_until_it_succeeds(box: Sandbox) -> None:
    (box.root / "pull-failures").write_text("2\n")
    result = box.run(_scripts(manager=True)["node-images"])
    assert result.returncode == 0, result.stderr
    pulls = [c for c in box.calls("docker") if c.startswith("pull ")]
    assert pulls == ["pull swarm:1.2.9"] * 3, "agent and manager share the image: pulled once"
    assert [int(s) for s in box.read("sleeps").split()] == _backoff(2)
    console = box.read("console")
    assert "node-images: pull of swarm:1.2.9 failed (attempt 1 of 6); retrying in 15s" in console
    assert "node-images: swarm-agent: pulled swarm:1.2.9" in console


def test_pulls_give_up_after_the_bounded_attempts_and_say_so(box: Sandbox) -> None:
    (box.root / "pull-failures").write_text("1000\n")
    result = box.run(_scripts(manager=False)["node-images"])
    assert result.returncode == 1
    assert len([c for c in box.calls("docker") if c.startswith("pull ")]) == PULL_ATTEMPTS
    assert [int(s) for s in box.read("sleeps").split()] == _backoff(PULL_ATTEMPTS - 1)
    assert f"FAILED to pull swarm:1.2.9 after {PULL_ATTEMPTS} attempts" in box.read("console")


def test_present_images_are_not_pulled_again(box: Sandbox) -> None:
    (box.root / "images").write_text(f"swarm:1.2.9\n{AGENT_IMAGE}\n")
    result = box.run(_scripts(manager=True)["node-images"])
    assert result.returncode == 0, result.stderr
    assert not [c for c in box.calls("docker") if c.startswith("pull ")]


def test_no_user_docker_means_no_pull_and_a_console_message(box: Sandbox) -> None:
    (box.root / "docker-down").write_text("")
    result = box.run(_scripts(manager=False)["node-images"])
    assert result.returncode == 1
    assert "user Docker did not answer within 300s" in box.read("console")
    assert box.seconds == 300


def _identity(box: Sandbox) -> None:
    run = box.root / "run" / "swarm-cluster"
    run.mkdir(parents=True)
    (run / "identity").write_text("staging-web-i-0123456789abcdef0 10.20.1.5\n")


def _container(box: Sandbox, name: str, state: str = "true 0", **extra: str) -> None:
    (box.root / "containers" / name).write_text(f"{state}\n")
    for suffix, value in extra.items():
        (box.root / "containers" / f"{name}.{suffix}").write_text(f"{value}\n")


def test_a_healthy_node_is_reported_and_left_alone(box: Sandbox) -> None:
    _identity(box)
    _container(box, "swarm-agent")
    _container(box, "swarm-manager")
    result = box.run(_scripts(manager=True)["node-health"])
    assert result.returncode == 0, result.stderr
    assert box.calls("poweroff") == []
    assert f"node-health: healthy after {HEALTH_INTERVAL_SECONDS}s" in box.read("console")


def test_a_service_that_comes_up_late_but_in_time_keeps_the_node(box: Sandbox) -> None:
    _identity(box)
    _container(box, "swarm-agent", **{"from": str(CLOCK_START + 600)})
    result = box.run(_scripts(manager=False)["node-health"])
    assert result.returncode == 0, result.stderr
    assert box.calls("poweroff") == []
    assert 600 <= box.seconds < 600 + 3 * HEALTH_INTERVAL_SECONDS


@pytest.mark.parametrize(
    ("identity", "containers", "reason"),
    [
        (True, {"swarm-agent": {}}, "swarm-manager (swarm:1.2.9) does not exist"),
        (
            True,
            {"swarm-agent": {}, "swarm-manager": {"state": "false 3"}},
            "swarm-manager (swarm:1.2.9) is not running",
        ),
        (False, {"swarm-agent": {}, "swarm-manager": {}}, "node-bootstrap did not validate this node's identity"),
        (True, {"swarm-agent": {}, "swarm-manager": {"crashing": ""}}, "a service keeps restarting"),
    ],
    ids=["missing", "stopped", "no-identity", "crash-loop"],
)
def test_a_node_unhealthy_at_the_deadline_says_why_and_powers_off(
    box: Sandbox, identity: bool, containers: dict[str, dict[str, str]], reason: str
) -> None:
    if identity:
        _identity(box)
    for name, extra in containers.items():
        _container(box, name, **extra)
    result = box.run(_scripts(manager=True)["node-health"])
    assert result.returncode == 1
    assert box.calls("poweroff") == [""], "exactly one power-off"
    assert HEALTH_DEADLINE_SECONDS <= box.seconds < HEALTH_DEADLINE_SECONDS + HEALTH_INTERVAL_SECONDS
    console = box.read("console")
    assert f"node-health: UNHEALTHY: {reason}" in console
    assert re.search(r"not healthy \d+s after boot; powering off", console)


def test_the_deadline_outlasts_every_retry_and_the_groups_grace_period() -> None:
    """No tight replacement loop: a node gets the whole retry budget, and lives far longer than the grace
    period, before node-health gives up on it."""
    retrying = DOCKER_WAIT_SECONDS + sum(_backoff(PULL_ATTEMPTS - 1))
    assert retrying < HEALTH_DEADLINE_SECONDS
    assert HEALTH_DEADLINE_SECONDS >= 5 * WARMUP_SECONDS
