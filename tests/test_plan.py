"""The offline plan command (`dev.py plan`): its spellings, what it prints and writes, its exit statuses.

Most tests print and write from the session's recorded runs; a process is started only where the process is the
point (exit status through `dev.py`, the same JSON from another interpreter).
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from pulumi.runtime.proto import resource_pb2

from offline import plan
from offline.artifacts import MARKER, ArtifactFolderError, write_artifacts
from offline.harness import resource_options
from offline.program_copy import copy_program
from offline.stack_files import PROJECT_ROOT
from offline.summary import summarize
from rendering.yaml_text import decode_user_data
from tests.conftest import recorded
from tests.plan_runs import plan_in_process

DEV = [sys.executable, str(PROJECT_ROOT / "dev.py")]


def _run(command: list[str], cwd: Path = PROJECT_ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONHASHSEED": "random"}  # another process, another string hash order
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    "argv", [[], ["staging"], ["--stack", "staging"], ["-s", "staging"], ["staging", "-s", "staging"]]
)
def test_the_stack_is_named_as_pulumi_names_it(argv: list[str]) -> None:
    assert plan.parse_options(argv).stack == "staging"


def test_two_different_stacks_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        plan.parse_options(["staging", "--stack", "production"])
    assert exited.value.code == 2
    assert "two stacks given: staging and --stack production" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--help"], ["-h"]])
def test_help_exits_0_and_names_dev_py(argv: list[str]) -> None:
    result = _run([*DEV, *argv])
    assert result.returncode == 0, result.stderr
    assert "python3 dev.py plan" in result.stdout and "offline.plan" not in result.stdout


@pytest.mark.parametrize(
    "command",
    [
        [*DEV, "--help"],  # `dev.py --help | head`: output the pipe holds, refused when flushed
        [  # `dev.py plan --json | head`: output larger than the pipe holds, refused while written
            sys.executable,
            "-c",
            "import sys; from offline.command import as_command; sys.exit(as_command(lambda: print('{}' * 9**5) or 0))",
        ],
    ],
    ids=["flushed", "written"],
)
def test_a_reader_that_stops_early_ends_the_command_as_sigpipe_would_without_a_traceback(command: list[str]) -> None:
    reader, writer = os.pipe()
    os.close(reader)  # the reader has left before anything is written
    try:
        result = subprocess.run(command, cwd=PROJECT_ROOT, stdout=writer, stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(writer)
    assert (result.returncode, result.stderr) == (141, "")


def test_ctrl_c_ends_the_command_as_sigint_would_without_a_traceback() -> None:
    code = (
        "import sys, time; from offline.command import as_command; "
        "sys.exit(as_command(lambda: print('started', flush=True) or time.sleep(60) or 0))"
    )
    command = [sys.executable, "-c", code]
    with subprocess.Popen(
        command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as child:
        assert child.stdout is not None and child.stdout.readline() == "started\n"
        child.send_signal(signal.SIGINT)
        _, stderr = child.communicate(timeout=30)
    assert (child.returncode, stderr) == (130, "")


@pytest.mark.parametrize(("command", "argument"), [("golden", "staging"), ("docs", "--check")])
def test_commands_without_arguments_refuse_them_instead_of_ignoring_them(command: str, argument: str) -> None:
    result = _run([*DEV, command, argument])
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"python3 dev.py {command} takes no arguments, not: {argument}\n"


def test_plan_help_exits_0_and_names_dev_py(capsys: pytest.CaptureFixture[str]) -> None:
    """`dev.py plan` passes its exit status on (the JSON test's process shows it): the plan's own help suffices."""
    with pytest.raises(SystemExit) as exited:
        plan.main(["--help"])
    assert exited.value.code == 0
    printed = capsys.readouterr().out
    assert printed.startswith("usage: python3 dev.py plan") and "offline.plan" not in printed


def test_an_unknown_command_shows_the_commands_and_exits_2() -> None:
    result = _run([*DEV, "deploy"])
    assert result.returncode == 2
    assert "python3 dev.py test" in result.stderr


def test_plan_prints_the_tree_and_writes_user_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = recorded("staging")
    plan.report(run, write_artifacts(run, tmp_path), tmp_path)
    printed = capsys.readouterr().out
    assert printed.startswith("OFFLINE PLAN")
    assert "swarmcluster:nodes:SwarmNodeGroup" in printed and "staging-web-asg" in printed
    assert "swarmManagerEndpoint" in printed
    written = sorted(p.parent.name for p in tmp_path.glob("*/user-data.yaml"))
    assert written == sorted(
        ["staging-cluster-consul", "staging-cluster-registry"]
        + [f"staging-{g}" for g in ("managers", "frontend", "web", "services", "queue", "db")]
    )


def test_plan_json_is_the_same_from_another_process(tmp_path: Path) -> None:
    result = _run([*DEV, "plan", "-s", "production", "--json", "--out", str(tmp_path)])
    assert result.returncode == 0, result.stderr
    assert result.stdout == plan.document(recorded("production")) + "\n"
    document = json.loads(result.stdout)
    assert document["offline"] is True and len(document["resources"]) == len(recorded("production").resources)
    template = next(r for r in document["resources"] if r["name"] == "production-web-lt")
    assert template["parent"] == "swarmcluster:hosts:RancherOSFleet::production-web"
    assert template["inputs"]["metadataOptions"]["httpTokens"] == "optional"


def test_plan_json_shows_the_resource_options() -> None:
    document = json.loads(plan.document(recorded("production")))
    by_name = {r["name"]: r for r in document["resources"]}
    bucket = by_name["production-cluster-registry-bucket"]["options"]
    assert bucket["protect"] is True and bucket["retainOnDelete"] is True
    assert by_name["production-cluster-registry-bucket-tls-only"]["options"]["dependsOn"] == [
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration::production-cluster-registry-bucket-lifecycle"
    ]
    assert "dependsOn" not in by_name["production-web-lt"]["options"], "input dependencies are not dependsOn"


def test_every_option_of_a_request_is_recorded() -> None:
    request = resource_pb2.RegisterResourceRequest(
        type="aws:s3/bucket:Bucket",
        name="b",
        protect=False,
        retainOnDelete=True,
        dependencies=["urn:a", "urn:b"],
        propertyDependencies={"bucket": resource_pb2.RegisterResourceRequest.PropertyDependencies(urns=["urn:a"])},
        deleteBeforeReplace=True,
        deleteBeforeReplaceDefined=True,
        ignoreChanges=["tags"],
        replaceOnChanges=["name"],
        additionalSecretOutputs=["arn"],
        customTimeouts=resource_pb2.RegisterResourceRequest.CustomTimeouts(create="5m"),
        provider="urn:provider::id",
        aliasURNs=["urn:old"],
        deletedWith="urn:c",
        importId="bucket-1",
    )
    assert resource_options(request) == {
        "additionalSecretOutputs": ["arn"],
        "aliases": ["urn:old"],
        "customTimeouts": {"create": "5m"},
        "deleteBeforeReplace": True,
        "deletedWith": "urn:c",
        "dependsOn": ["urn:b"],
        "ignoreChanges": ["tags"],
        "import": "bucket-1",
        "protect": False,
        "provider": "urn:provider::id",
        "replaceOnChanges": ["name"],
        "retainOnDelete": True,
    }
    assert resource_options(resource_pb2.RegisterResourceRequest(type="t", name="n")) == {}


def test_plan_of_a_broken_stack_file_exits_2_without_traceback(tmp_path: Path) -> None:
    project = copy_program(tmp_path)
    stack_file = project / "Pulumi.staging.yaml"
    stack_file.write_text(
        stack_file.read_text().replace("serverCount: 1", "serverCount: 4").replace("amiId: ami-", "amiId: img-")
    )
    result = plan_in_process(project, "staging")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    assert "Pulumi.staging.yaml: swarm-cluster:consul.serverCount: 4 is even" in result.stderr
    assert (
        "Pulumi.staging.yaml: swarm-cluster:rancheros.amiId: 'img-0c3f2b8a7d9e41f56' is not valid; expected an AMI id"
        in result.stderr
    )
    assert not (project / "build").exists(), "nothing is written for a config that does not validate"


def test_plan_of_an_unknown_stack_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert plan.main(["--stack", "qa"]) == 2
    assert "Pulumi.qa.yaml: no such stack file; the stacks are: production, staging" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["Pulumi.staging.yaml", "Pulumi.yaml"])
def test_a_project_file_that_cannot_be_read_is_named(tmp_path: Path, name: str) -> None:
    project = copy_program(tmp_path)
    (project / name).unlink()
    (project / name).mkdir()
    result = plan_in_process(project, "staging")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"error: {name}: (file): cannot read it (Is a directory); it must be a file in {project}\n"


def test_plan_never_empties_a_folder_it_did_not_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "keep.txt").write_text("mine")
    assert plan.main(["staging", "--out", str(precious)]) == 2
    assert "was not written by the offline plan" in capsys.readouterr().err
    assert (precious / "keep.txt").read_text() == "mine"
    fresh = tmp_path / "fresh"
    first = write_artifacts(recorded("staging"), fresh)
    assert write_artifacts(recorded("staging"), fresh) == first, "a rerun reuses its folder"


@pytest.mark.parametrize(
    ("out", "problem"), [("a-file", "not a folder"), ("a-file/inside", "a-file is not a folder; choose another --out")]
)
def test_an_out_that_is_no_folder_is_refused_before_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], out: str, problem: str
) -> None:
    (tmp_path / "a-file").write_text("mine")
    assert plan.main(["staging", "--out", str(tmp_path / out)]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"error: --out {tmp_path / out}: ") and problem in line
    assert (tmp_path / "a-file").read_text() == "mine"


def test_an_out_the_plan_cannot_write_is_one_error_not_a_traceback() -> None:
    with pytest.raises(ArtifactFolderError, match=r"^--out /proc/swarm-cluster-plan: cannot write there \("):
        write_artifacts(recorded("staging"), Path("/proc/swarm-cluster-plan"))  # /proc takes no new folders


def test_a_rerun_leaves_exactly_the_plans_files_and_rewrites_only_changes(tmp_path: Path) -> None:
    written = write_artifacts(recorded("staging"), tmp_path)
    removed_group = tmp_path / "staging-gone" / "files" / "etc" / "rc.local"
    removed_group.parent.mkdir(parents=True)
    removed_group.write_text("from a group since removed")
    (tmp_path / "staging-web" / "files" / "stale.txt").write_text("no longer rendered")
    changed, unchanged = written[0], written[1]
    changed.write_text("edited by hand")
    os.utime(unchanged, (1, 1))
    assert write_artifacts(recorded("staging"), tmp_path) == written
    on_disk = {p for p in tmp_path.rglob("*") if p.is_file()}
    assert on_disk == {*written, tmp_path / MARKER}
    assert not (tmp_path / "staging-gone").exists(), "folders left empty are removed"
    assert changed.read_text() != "edited by hand"
    assert unchanged.stat().st_mtime == 1, "an unchanged file is not rewritten"


def test_the_readme_names_only_artifact_paths_the_plan_writes(tmp_path: Path) -> None:
    claimed = set(re.findall(r"`(build/plan/[^`<]+)`", (PROJECT_ROOT / "README.md").read_text()))
    assert claimed, "the README names no artifact path"
    for stack in ("staging", "production"):
        write_artifacts(recorded(stack), tmp_path / "build" / "plan" / stack)
    for path in sorted(claimed):
        assert (tmp_path / path).exists(), f"README.md names {path}, which `dev.py plan` does not write"


def test_the_tree_names_each_scaling_policy_metric() -> None:
    run = recorded("staging")
    shown = {r.name: summarize(r) for r in run.resources if r.type == "aws:autoscaling/policy:Policy"}
    assert shown["staging-web-cpu"].startswith("ASGAverageCPUUtilization target=")
    assert shown["staging-web-reservation"].startswith("SwarmCluster/staging/CapacityReservation target=")


def test_the_tree_shows_user_data_against_ec2s_limit_on_the_stored_bytes() -> None:
    template = recorded("staging").named("aws:ec2/launchTemplate:LaunchTemplate", "staging-managers-lt")
    stored = len(base64.b64decode(template.inputs["userData"]))
    text = len(decode_user_data(template.inputs["userData"]).encode())
    assert stored < 16384 < text, "the managers' text is over the limit, what EC2 stores is not"
    assert summarize(template).endswith(f"user-data={stored}B of 16384B stored ({text}B of text)")
