"""`dev.py plan <stack> --against <ref>`: the program at the ref runs in its own process, the working tree's in the
plan's process, then both are compared.

One test runs the real command in a git repository whose working tree edits a component, so the working tree's
own code must be what runs and the committed code what runs at the ref. The comparisons of stack-file edits
need no repository: the committed side of this checkout is the session's recorded run of its program, and the
working tree's side is `working_tree`, the plan's own call, on a copy with the edited stack file.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from offline.compare import render, report, working_tree
from offline.program_copy import copy_program
from offline.refresh_time import BOOT_SECONDS
from offline.snapshot import record
from offline.stack_files import SECRET_PLACEHOLDER, stack_config_map
from rendering.yaml_text import decode_user_data
from tests.conftest import recorded
from tests.plan_runs import plan_in_process, retagged

GROUP = "aws:autoscaling/group:Group"
TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
STAGING_GROUPS = ("managers", "frontend", "web", "services", "queue", "db")
AGAINST = {"ref": "main", "commit": "the committed program", "stackIsNew": False}


def _git(project: Path, *args: str) -> str:
    identity = ["-c", "user.name=test", "-c", "user.email=test@example.invalid", "-c", "commit.gpgsign=false"]
    return subprocess.run(["git", *identity, *args], cwd=project, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A one-commit repository holding the program as it is now."""
    copy = copy_program(tmp_path / "repo")
    _git(copy, "init", "-q", "-b", "main")
    _git(copy, "add", "-A")
    _git(copy, "commit", "-q", "-m", "base")
    return copy


def _edit(project: Path, stack: str, key: str, change: Callable[[Any], Any]) -> None:
    path = project / f"Pulumi.{stack}.yaml"
    document = yaml.safe_load(path.read_text())
    document["config"][f"swarm-cluster:{key}"] = change(document["config"][f"swarm-cluster:{key}"])
    path.write_text(yaml.safe_dump(document, sort_keys=False))


@cache
def _committed(stack: str) -> list[dict[str, Any]]:
    return [record(r) for r in recorded(stack).resources]


def _compared(tmp_path: Path, stack: str, key: str, change: Callable[[Any], Any]) -> dict[str, Any]:
    """What `plan STACK --against` reports when the working tree edits one key of the stack file."""
    project = copy_program(tmp_path / "tree")
    _edit(project, stack, key, change)
    return _compared_with(stack, working_tree(stack, project))


def _compared_with(stack: str, head: list[dict[str, Any]]) -> dict[str, Any]:
    return report(stack, AGAINST, _committed(stack), head)


def _actions(report: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {(r["type"], r["name"]): r["action"] for r in report["resources"]}


def test_the_command_runs_the_committed_code_at_the_ref_and_the_working_trees_own(project: Path) -> None:
    """A new description forces a new security group; its id changes, which the offline ids cannot show."""
    component = project / "components" / "swarm_node_group.py"
    component.write_text(component.read_text().replace(": ports of this group only", ": its own ports only"))
    command = [sys.executable, "-m", "offline.plan", "staging", "--against", "main", "--json"]
    result = subprocess.run(command, cwd=project, capture_output=True, text=True, timeout=300)
    assert (result.returncode, result.stderr) == (0, "")
    report = json.loads(result.stdout)
    actions = _actions(report)
    groups = {name for (type_, name), action in actions.items() if type_ == SECURITY_GROUP}
    assert groups == {f"staging-{g}-sg" for g in STAGING_GROUPS}
    assert {actions[k] for k in actions if k[0] == SECURITY_GROUP} == {"replace"}
    # Nothing else differs between the two sides: every other change follows from a replaced security group.
    for resource in report["resources"]:
        paths = [c["path"] for c in resource["changes"]]
        if resource["type"] == SECURITY_GROUP:
            assert paths == ["description"], resource["name"]
        elif resource["type"] == GROUP:
            assert paths == ["launchTemplate.version"], resource["name"]
        else:
            assert set(resource["because_of"]) <= groups and resource["because_of"], resource["name"]
    assert report["summary"]["unchanged"] == len(recorded("staging").resources) - len(report["resources"])
    rules = [r for r in report["resources"] if r["type"].endswith("IngressRule")]
    frontend_http = next(r for r in rules if r["name"] == "staging-frontend-in-tcp-80-0")
    assert frontend_http["action"] == "replace" and frontend_http["replacedBy"] == ["securityGroupId"]
    assert frontend_http["because_of"] == ["staging-frontend-sg"]
    rolling = {roll["group"]: roll["reasons"] for roll in report["rollout"]}
    assert set(rolling) == {f"staging-{g}" for g in STAGING_GROUPS}
    assert rolling["staging-web"] == ["new launch template version (vpcSecurityGroupIds)"]
    # Each group keeps its name: AWS would refuse the replacement while the old group exists.
    assert "REPLACEMENT WILL FAIL: staging-web-sg (SecurityGroup) keeps its name" in "\n".join(report["warnings"])


def test_an_unknown_ref_exits_2(project: Path) -> None:
    missing = plan_in_process(project, "staging", "--against", "no-such-ref")
    assert missing.returncode == 2
    assert missing.stderr.strip() == "error: no-such-ref is not a commit of this repository"


def test_an_invalid_working_tree_is_a_config_error(project: Path) -> None:
    _edit(project, "staging", "consul", lambda consul: {**consul, "serverCount": 2})
    result = plan_in_process(project, "staging", "--against", "main")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith("error: the working tree's program for staging rejects its stack configuration")
    assert "Pulumi.staging.yaml: swarm-cluster:consul.serverCount: 2 is even" in result.stderr


def test_a_clean_tree_changes_nothing() -> None:
    """That both sides' runs of one program agree resource by resource is the command test's to show."""
    report = _compared_with("staging", _committed("staging"))
    assert report["resources"] == [] and report["rollout"] == [] and report["warnings"] == []
    assert report["summary"]["unchanged"] == len(recorded("staging").resources)
    assert "no instance is replaced" in render(report)


def test_an_instance_type_change_rolls_that_group_and_only_it(tmp_path: Path) -> None:
    def bigger_web(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
        next(g for g in groups if g["name"] == "web")["instanceType"] = "t3.large"
        return groups

    report = _compared(tmp_path, "staging", "nodeGroups", bigger_web)
    assert _actions(report) == {(TEMPLATE, "staging-web-lt"): "update", (GROUP, "staging-web-asg"): "update"}
    template = next(r for r in report["resources"] if r["type"] == TEMPLATE)
    assert [(c["path"], c["before"], c["after"]) for c in template["changes"]] == [
        ("instanceType", "t3.medium", "t3.large")
    ]
    [roll] = report["rollout"]
    assert roll["group"] == "staging-web" and roll["reasons"] == ["new launch template version (instanceType)"]
    assert (roll["instances"], roll["maxInstances"], roll["minHealthyPercentage"]) == (1, 3, 90)
    assert roll["how"] == "one at a time, new instances in service before old ones stop"
    assert roll["drainSeconds"] > 0, "the group's drain window holds each replaced instance"
    per_instance = BOOT_SECONDS + roll["instanceWarmupSeconds"] + roll["drainSeconds"]
    assert roll["estimatedSeconds"] == [per_instance, 3 * per_instance]
    assert report["warnings"] == []


def test_a_cost_tag_edit_rolls_nothing() -> None:
    """The day-2 tests' run of the same edit (`retagged`) is the working tree's side."""
    report = _compared_with("staging", [record(r) for r in retagged("staging").resources])
    assert report["rollout"] == [] and report["summary"]["replace"] == 0
    assert {r["action"] for r in report["resources"]} == {"update"}
    for resource in report["resources"]:
        assert {c["path"].split("[")[0].split(".")[0] for c in resource["changes"]} == {"tags"}, resource["name"]


def test_a_new_bucket_name_is_loud_in_production(tmp_path: Path) -> None:
    bucket = {"bucketName": "example-prod-images-2"}
    report = _compared(tmp_path, "production", "registry", lambda registry: {**registry, **bucket})
    actions = _actions(report)
    assert actions[("aws:s3/bucket:Bucket", "production-cluster-registry-bucket")] == "replace"
    # The bucket's settings and policy refer to it by name: each is replaced along with it.
    assert actions[("aws:s3/bucketVersioning:BucketVersioning", "production-cluster-registry-bucket-versioning")] == (
        "replace"
    )
    # The Consul servers' snapshot agent names the bucket, and Swarm nodes fetch their agents from it by URL.
    swarm_groups = [
        f"production-{g['name']}" for g in json.loads(stack_config_map("production")[0]["swarm-cluster:nodeGroups"])
    ]
    rolled = ["production-cluster-consul", "production-cluster-registry", *swarm_groups]
    assert sorted(r["group"] for r in report["rollout"]) == sorted(rolled)
    warnings = "\n".join(report["warnings"])
    assert "REGISTRY BUCKET REPLACED: production-cluster-registry-bucket" in warnings
    assert "PROTECTED RESOURCE REPLACED: production-cluster-registry-bucket" in warnings
    registry_template = next(r for r in report["resources"] if r["name"] == "production-cluster-registry-lt")
    [user_data] = [c for c in registry_template["changes"] if c["path"] == "userData"]
    shown = decode_user_data(user_data["after"])
    assert bucket["bucketName"] in shown, "user-data holds no secret: its change shows in clear"
    assert SECRET_PLACEHOLDER not in json.dumps(report)


def test_growing_the_consul_quorum_warns(tmp_path: Path) -> None:
    report = _compared(tmp_path, "production", "consul", lambda consul: {**consul, "serverCount": 5})
    [roll] = report["rollout"]
    assert roll["group"] == "production-cluster-consul" and roll["instances"] == 5
    assert any(
        w.startswith("QUORUM GROUP ROLLS: production-cluster-consul (5 Consul servers)") for w in report["warnings"]
    )
    group = next(r for r in report["resources"] if r["type"] == GROUP)
    assert {c["path"] for c in group["changes"]} >= {"minSize", "maxSize", "desiredCapacity", "launchTemplate.version"}


def test_a_new_consul_image_on_staging_warns_of_the_lone_server(tmp_path: Path) -> None:
    report = _compared(tmp_path, "staging", "consul", lambda consul: {**consul, "image": "hashicorp/consul:1.20.3"})
    [roll] = report["rollout"]
    assert roll["group"] == "staging-cluster-consul" and roll["how"].endswith("an outage")
    [warning] = report["warnings"]
    assert warning.startswith("LONE CONSUL SERVER REPLACED: staging-cluster-consul")
    assert "KV data" in warning
    template = next(r for r in report["resources"] if r["name"] == "staging-cluster-consul-lt")
    # It holds no secret (the gossip key comes from SSM): the change shows in clear.
    [user_data] = template["changes"]
    assert user_data["path"] == "userData" and "hashicorp/consul:1.20.3" in decode_user_data(user_data["after"])
