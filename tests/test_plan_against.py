"""`dev.py plan <stack> --against <ref>`: both sides run offline in their own processes, then compared."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from offline.compare import CompareError, compare, render
from offline.refresh_time import BOOT_SECONDS
from offline.stack_files import SECRET_PLACEHOLDER, stack_config_map
from tests.conftest import recorded
from tests.plan_runs import project_copy

GROUP = "aws:autoscaling/group:Group"
TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"


def _git(project: Path, *args: str) -> str:
    identity = ["-c", "user.name=test", "-c", "user.email=test@example.invalid", "-c", "commit.gpgsign=false"]
    return subprocess.run(["git", *identity, *args], cwd=project, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A one-commit repository holding the program as it is now."""
    copy = project_copy(tmp_path / "repo")
    _git(copy, "init", "-q", "-b", "main")
    _git(copy, "add", "-A")
    _git(copy, "commit", "-q", "-m", "base")
    return copy


def _edit(project: Path, stack: str, key: str, change: Any) -> None:
    path = project / f"Pulumi.{stack}.yaml"
    document = yaml.safe_load(path.read_text())
    document["config"][f"swarm-cluster:{key}"] = change(document["config"][f"swarm-cluster:{key}"])
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def _actions(report: dict[str, Any]) -> dict[tuple[str, str], str]:
    return {(r["type"], r["name"]): r["action"] for r in report["resources"]}


def test_a_clean_tree_against_head_changes_nothing(project: Path) -> None:
    report = compare("staging", "HEAD", project)
    assert report["resources"] == [] and report["rollout"] == [] and report["warnings"] == []
    assert report["summary"]["unchanged"] == len(recorded("staging").resources)
    assert "no instance is replaced" in render(report)


def test_an_instance_type_change_rolls_that_group_and_only_it(project: Path) -> None:
    def bigger_web(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
        next(g for g in groups if g["name"] == "web")["instanceType"] = "t3.large"
        return groups

    _edit(project, "staging", "nodeGroups", bigger_web)
    report = compare("staging", "main", project)
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


def test_a_cost_tag_edit_rolls_nothing(project: Path) -> None:
    _edit(project, "staging", "tags", lambda tags: {**tags, "CostCenter": "finance"})
    report = compare("staging", "main", project)
    assert report["rollout"] == [] and report["summary"]["replace"] == 0
    assert {r["action"] for r in report["resources"]} == {"update"}
    for resource in report["resources"]:
        assert {c["path"].split("[")[0].split(".")[0] for c in resource["changes"]} == {"tags"}, resource["name"]


def test_a_new_bucket_name_is_loud_in_production(project: Path) -> None:
    _edit(project, "production", "registry", lambda registry: {**registry, "bucketName": "example-prod-images-2"})
    report = compare("production", "main", project)
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
    assert set(user_data["after"]) == {"secret"}, "user-data carrying the registry secret shows only as a digest"
    assert SECRET_PLACEHOLDER not in json.dumps(report)


def test_growing_the_consul_quorum_warns(project: Path) -> None:
    _edit(project, "production", "consul", lambda consul: {**consul, "serverCount": 5})
    report = compare("production", "main", project)
    [roll] = report["rollout"]
    assert roll["group"] == "production-cluster-consul" and roll["instances"] == 5
    assert any(
        w.startswith("QUORUM GROUP ROLLS: production-cluster-consul (5 Consul servers)") for w in report["warnings"]
    )
    group = next(r for r in report["resources"] if r["type"] == GROUP)
    assert {c["path"] for c in group["changes"]} >= {"minSize", "maxSize", "desiredCapacity", "launchTemplate.version"}


def test_cli_json_and_unknown_ref(project: Path) -> None:
    command = [sys.executable, "-m", "offline.plan", "staging", "--against"]
    result = subprocess.run([*command, "HEAD", "--json"], cwd=project, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["summary"]["unchanged"] == len(recorded("staging").resources)
    missing = subprocess.run([*command, "no-such-ref"], cwd=project, capture_output=True, text=True, timeout=300)
    assert missing.returncode == 2
    assert missing.stderr.strip() == "error: no-such-ref is not a commit of this repository"


def test_a_replaced_security_group_replaces_its_rules_and_rolls_its_groups(project: Path) -> None:
    """A new description forces a new security group; its id changes, which the offline ids cannot show."""
    component = project / "components" / "swarm_node_group.py"
    component.write_text(component.read_text().replace(": ports of this group only", ": its own ports only"))
    report = compare("staging", "main", project)
    actions = _actions(report)
    groups = {name for (type_, name), action in actions.items() if type_ == "aws:ec2/securityGroup:SecurityGroup"}
    assert groups == {f"staging-{g}-sg" for g in ("managers", "frontend", "web", "services", "queue", "db")}
    assert {actions[k] for k in actions if k[0] == "aws:ec2/securityGroup:SecurityGroup"} == {"replace"}
    rules = [r for r in report["resources"] if r["type"].endswith("IngressRule")]
    frontend_http = next(r for r in rules if r["name"] == "staging-frontend-in-tcp-80-0")
    assert frontend_http["action"] == "replace" and frontend_http["replacedBy"] == ["securityGroupId"]
    assert frontend_http["because_of"] == ["staging-frontend-sg"]
    rolling = {roll["group"]: roll["reasons"] for roll in report["rollout"]}
    assert set(rolling) == {f"staging-{g}" for g in ("managers", "frontend", "web", "services", "queue", "db")}
    assert rolling["staging-web"] == ["new launch template version (vpcSecurityGroupIds)"]
    # Each group keeps its name: AWS would refuse the replacement while the old group exists.
    assert "REPLACEMENT WILL FAIL: staging-web-sg (SecurityGroup) keeps its name" in "\n".join(report["warnings"])


def test_an_invalid_working_tree_is_a_config_error(project: Path) -> None:
    _edit(project, "staging", "consul", lambda consul: {**consul, "serverCount": 2})
    with pytest.raises(CompareError) as caught:
        compare("staging", "main", project)
    assert caught.value.status == 2
    assert "the working tree's program for staging rejects its stack configuration" in str(caught.value)
    assert "Pulumi.staging.yaml: swarm-cluster:consul.serverCount: 2 is even" in str(caught.value)


def test_a_new_consul_image_on_staging_warns_of_the_lone_server(project: Path) -> None:
    _edit(project, "staging", "consul", lambda consul: {**consul, "image": "hashicorp/consul:1.20.3"})
    report = compare("staging", "main", project)
    [roll] = report["rollout"]
    assert roll["group"] == "staging-cluster-consul" and roll["how"].endswith("an outage")
    [warning] = report["warnings"]
    assert warning.startswith("LONE CONSUL SERVER REPLACED: staging-cluster-consul")
    assert "KV data" in warning
    template = next(r for r in report["resources"] if r["name"] == "staging-cluster-consul-lt")
    # It carries the gossip key: the change shows only as a digest.
    [user_data] = template["changes"]
    assert user_data["path"] == "userData" and set(user_data["after"]) == {"secret"}
    assert "hashicorp/consul:1.20.3" not in render(report)
