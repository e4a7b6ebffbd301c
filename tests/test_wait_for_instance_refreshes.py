"""`.github/scripts/wait-for-instance-refreshes.sh` run for real against a fake `aws` (checked against botocore's
model) and a fake clock, through the refresh sequences a deploy meets: success, failure, cancellation, an earlier
failed refresh, and one too slow for its deadline."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from offline.refresh_time import RefreshShape
from tests.fakes import aws_cli

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / ".github" / "scripts" / "wait-for-instance-refreshes.sh"
START = 1_790_000_000  # the fake clock's epoch seconds
DRAINED = {"docker.environment": "staging", "swarm-cluster:drain-window-seconds": "300"}
LAUNCH_FIRST = {"MinHealthyPercentage": 90, "MaxHealthyPercentage": 110, "InstanceWarmup": 300}


@dataclass
class Deploy:
    """One stack's groups in the fake AWS, a fake clock, and the script run against both."""

    tmp: Path
    scenario: dict[str, Any]
    aws: aws_cli.FakeAwsCli

    def __post_init__(self) -> None:
        bin_dir = self.tmp / "bin"
        self.install()
        clock = self.tmp / "clock"
        clock.write_text(str(START))
        # Time passes only when the script sleeps, so a two-hour wait runs in a moment. Shell builtins only: the
        # script looks at the clock and sleeps once per poll.
        read_clock = f'read -r now < "{clock}"'
        (bin_dir / "date").write_text(f'#!/bin/sh\n[ "$1" = +%s ] || exec /bin/date "$@"\n{read_clock}\necho "$now"\n')
        (bin_dir / "sleep").write_text(f'#!/bin/sh\n{read_clock}\necho $((now + $1)) > "{clock}"\n')
        for name in ("date", "sleep"):
            (bin_dir / name).chmod(0o755)
        # The script's `python3` (standard library only) is a plain interpreter, as on a runner, not whatever
        # this machine's PATH has: a version manager's shim (pyenv's) costs a quarter of a second per call.
        (bin_dir / "python3").symlink_to(sys.executable)
        self.env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "REFRESH_POLL_SECONDS": "30"}
        self.baseline = self.tmp / "refreshes-before"

    def run(self, action: str, poll: int = 30) -> subprocess.CompletedProcess[str]:
        command = ["sh", str(SCRIPT), action, "staging", str(self.baseline)]
        env = {**self.env, "REFRESH_POLL_SECONDS": str(poll)}
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)

    def install(self) -> None:
        """The fake `aws`, answering from the scenario as it is now."""
        self.aws.install(self.tmp / "bin", self.tmp / "aws", self.scenario)

    def start_refresh(self, group: str, refresh: dict[str, Any]) -> None:
        """What `pulumi up` does between `record` and `wait`."""
        self.scenario["refreshes"].setdefault(group, []).append(refresh)
        self.install()

    @property
    def elapsed(self) -> int:
        return int((self.tmp / "clock").read_text()) - START


def _group(name: str, desired: int, tags: dict[str, str] = DRAINED) -> dict[str, Any]:
    return {"name": name, "tags": tags, "desired": desired, "min": 1, "max": 6, "defaultInstanceWarmup": 300}


def _refresh(id_: str, start: str, *timeline: str, **extra: Any) -> dict[str, Any]:
    return {"id": id_, "start": start, "timeline": list(timeline), "preferences": LAUNCH_FIRST, **extra}


@pytest.fixture(scope="module")
def fake_aws_cli() -> Iterator[aws_cli.FakeAwsCli]:
    with aws_cli.FakeAwsCli() as server:
        yield server
    assert server.errors == [], "the fake failed a check of its own answers"


@pytest.fixture
def deploy(tmp_path: Path, fake_aws_cli: aws_cli.FakeAwsCli) -> Deploy:
    scenario = {
        "groups": [
            _group("staging-web", 2),
            _group("staging-db", 1),
            _group("production-web", 6, {"docker.environment": "production"}),
        ],
        "refreshes": {"staging-web": [_refresh("r-old", "2026-11-20T10:00:00Z", "Successful")]},
    }
    return Deploy(tmp_path, scenario, fake_aws_cli)


def _recorded(deploy: Deploy) -> None:
    result = deploy.run("record")
    assert result.returncode == 0, result.stderr
    assert deploy.baseline.read_text() == "staging-web r-old\n"


def test_waits_for_the_refresh_this_deploy_started(deploy: Deploy) -> None:
    _recorded(deploy)
    deploy.start_refresh(
        "staging-web", _refresh("r-new", "2026-11-25T14:00:00Z", "Pending", "InProgress", "InProgress", "Successful")
    )
    result = deploy.run("wait")
    assert result.returncode == 0, result.stderr
    assert "staging-web: refresh r-new Successful" in result.stdout
    assert "staging-db: no instance refresh started by this deploy" in result.stdout
    assert "staging: every instance refresh of this deploy succeeded" in result.stdout
    assert deploy.elapsed == 2 * 30, "the first look saw Pending, then two pauses until Successful"
    assert "production-web" not in result.stdout, "only the environment's own groups"


@pytest.mark.parametrize(("ending", "reason"), [("Failed", "Instances failed to reach InService"), ("Cancelled", None)])
def test_a_refresh_that_ends_badly_fails_the_deploy(deploy: Deploy, ending: str, reason: str | None) -> None:
    _recorded(deploy)
    extra = {"statusReason": reason} if reason else {}
    deploy.start_refresh("staging-web", _refresh("r-new", "2026-11-25T14:00:00Z", "InProgress", ending, **extra))
    result = deploy.run("wait")
    assert result.returncode == 1
    assert f"staging-web: refresh r-new ended {ending}: {reason or 'no reason given'}" in result.stderr


def test_an_earlier_failed_refresh_does_not_block_this_deploy(deploy: Deploy) -> None:
    deploy.scenario["refreshes"]["staging-db"] = [_refresh("r-broken", "2026-11-24T09:00:00Z", "Failed")]
    deploy.install()
    assert deploy.run("record").returncode == 0
    assert "staging-db r-broken" in deploy.baseline.read_text()
    unrelated = deploy.run("wait")
    assert unrelated.returncode == 0, "a deploy that rolls nothing succeeds despite the old failure"
    deploy.start_refresh("staging-db", _refresh("r-fix", "2026-11-25T14:00:00Z", "InProgress", "Successful"))
    result = deploy.run("wait")
    assert result.returncode == 0, result.stderr
    assert "staging-db: refresh r-fix Successful" in result.stdout


def test_a_slow_refresh_fails_at_a_deadline_derived_from_the_group(deploy: Deploy) -> None:
    _recorded(deploy)
    deploy.start_refresh("staging-web", _refresh("r-new", "2026-11-25T14:00:00Z", "InProgress"))
    poll = 300
    result = deploy.run("wait", poll=poll)
    assert result.returncode == 1
    assert "deadline passed with refreshes still running: staging-web" in result.stderr
    estimate = RefreshShape(2, 90, 110, 300, 300).seconds  # two drained instances, one at a time
    allowed = estimate * 3 // 2 + 600
    assert f"about {estimate // 60} min for 2 instance(s), allowed {allowed // 60} min" in result.stdout
    assert allowed <= deploy.elapsed < allowed + poll


def test_the_deadline_grows_with_the_group(deploy: Deploy) -> None:
    deploy.scenario["groups"][0]["desired"] = 6
    deploy.install()
    _recorded(deploy)
    deploy.start_refresh("staging-web", _refresh("r-new", "2026-11-25T14:00:00Z", "InProgress"))
    result = deploy.run("wait", poll=900)
    assert result.returncode == 1
    allowed = RefreshShape(6, 90, 110, 300, 300).seconds * 3 // 2 + 600
    assert allowed > 2 * 45 * 60, "six drained instances take far longer than the old fixed 45 minutes"
    assert allowed <= deploy.elapsed < allowed + 900


def test_wait_without_a_record_is_a_usage_error(deploy: Deploy) -> None:
    result = deploy.run("wait")
    assert result.returncode == 2 and "record staging" in result.stderr


def test_every_call_the_script_made_is_valid_for_the_real_cli(deploy: Deploy) -> None:
    _recorded(deploy)
    deploy.start_refresh("staging-web", _refresh("r-new", "2026-11-25T14:00:00Z", "Successful"))
    assert deploy.run("wait").returncode == 0
    made = aws_cli.calls(deploy.tmp / "aws")
    assert {c["operation"] for c in made} == {"DescribeAutoScalingGroups", "DescribeInstanceRefreshes"}
    groups = next(c for c in made if c["operation"] == "DescribeAutoScalingGroups")
    assert groups["params"] == {"Filters": [{"Name": "tag:docker.environment", "Values": ["staging"]}]}


def test_an_aws_error_fails_the_wait_instead_of_passing_it(deploy: Deploy) -> None:
    _recorded(deploy)
    broken = deploy.tmp / "bin" / "aws"
    broken.write_text("#!/bin/sh\necho 'An error occurred (ExpiredToken)' >&2\nexit 254\n")
    result = deploy.run("wait")
    assert result.returncode != 0 and "ExpiredToken" in result.stderr
    assert "succeeded" not in result.stdout


FakeRun = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def fake_aws(tmp_path: Path, fake_aws_cli: aws_cli.FakeAwsCli) -> FakeRun:
    fake_aws_cli.install(tmp_path / "bin", tmp_path / "aws", {"groups": [], "refreshes": {}})

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(tmp_path / "bin" / "aws"), *args], capture_output=True, text=True, timeout=60)

    return run


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["autoscaling", "describe-instance-refresh"], "Invalid choice: 'describe-instance-refresh'"),
        (["autoscaling", "describe-instance-refreshes"], "required: --auto-scaling-group-name"),
        (
            ["autoscaling", "describe-instance-refreshes", "--auto-scaling-group", "x"],
            "Unknown options: --auto-scaling-group",
        ),
        (
            ["autoscaling", "describe-instance-refreshes", "--auto-scaling-group-name", "x", "--max-records", "ten"],
            "invalid int",
        ),
        (["autoscaling", "describe-auto-scaling-groups", "--max-records", "5"], "Unknown options: --max-records"),
        (
            ["autoscaling", "describe-auto-scaling-groups", "--filters", "Name=tag:a,Valuez=b"],
            "unknown keys ['Valuez']",
        ),
        (["autoscaling", "describe-auto-scaling-groups", "--include-instances", "yes"], "expected no value"),
        (
            ["autoscaling", "describe-instance-refreshes", "--auto-scaling-group-name", ""],
            "Invalid length for parameter AutoScalingGroupName",
        ),
        (["autoscaling", "describe-auto-scaling-groups", "--output", "csv"], "--output: Invalid choice"),
    ],
)
def test_the_fake_rejects_what_the_cli_rejects(fake_aws: FakeRun, args: list[str], message: str) -> None:
    result = fake_aws(*args)
    assert result.returncode == aws_cli.USAGE_ERROR
    assert message in result.stderr


def test_the_fake_accepts_cli_paging_and_flags(fake_aws: FakeRun) -> None:
    result = fake_aws(
        "autoscaling", "describe-auto-scaling-groups", "--no-include-instances", "--page-size", "50", "--output", "json"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith("{")
