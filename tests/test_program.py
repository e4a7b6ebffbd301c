"""The program as a whole: component conventions, bad config handling, what AWS accepts."""

from __future__ import annotations

import json
import re

import pulumi
import pytest

from offline.harness import StackRun, run_stack
from offline.stack_files import stack_config_map
from stack_config.loader import load_stack_config
from tests.conftest import STACKS, recorded

COMPONENT_TYPE = re.compile(r"^swarmcluster:[a-z]+:[A-Z][A-Za-z]+$")


@pytest.mark.parametrize("stack", STACKS)
def test_every_resource_lives_in_a_component_and_derives_its_name(stack: str) -> None:
    run = recorded(stack)
    by_urn = {r.urn: r for r in run.resources}
    for resource in run.resources:
        if not resource.custom:
            assert COMPONENT_TYPE.match(resource.type), resource.type
        parent = by_urn.get(resource.parent or "")
        if resource.custom:
            assert parent is not None and not parent.custom, f"{resource.name} is not inside a component"
        if parent is not None:
            assert resource.name.startswith(parent.name), f"{resource.name} is not named after {parent.name}"


@pytest.mark.parametrize("stack", STACKS)
def test_the_only_cloud_lookups_are_the_ami_and_the_account(stack: str) -> None:
    ami = load_stack_config(stack, *stack_config_map(stack)).rancheros.amiId
    [(token, args), (identity, _)] = recorded(stack).invokes
    assert token == "aws:ec2/getAmi:getAmi"
    assert args["filters"] == [{"name": "image-id", "values": [ami]}]
    assert identity == "aws:index/getCallerIdentity:getCallerIdentity"


def test_bad_config_fails_before_any_resource() -> None:
    values, secrets = stack_config_map("staging")
    groups = json.loads(values["swarm-cluster:nodeGroups"])
    groups[1]["maxSize"] = 0
    values["swarm-cluster:nodeGroups"] = json.dumps(groups)
    values["swarm-cluster:consul"] = json.dumps({"serverCount": 2})
    partial = StackRun(stack="staging")
    with pytest.raises(pulumi.RunError) as caught:
        run_stack("staging", config=values, secret_keys=secrets, record=partial)
    assert partial.resources == [] and partial.invokes == [], "nothing may be declared for an invalid config"
    message = str(caught.value)
    assert "Pulumi.staging.yaml: swarm-cluster:nodeGroups[1].maxSize: " in message
    assert "Pulumi.staging.yaml: swarm-cluster:consul.serverCount: 2 is even" in message


# What AWS accepts in security group and rule descriptions (CreateSecurityGroup, AuthorizeSecurityGroupIngress).
AWS_DESCRIPTION = re.compile(r"[A-Za-z0-9. _:/()#,@\[\]+=&;{}!$*-]{0,255}")
SECURITY_GROUP_TYPES = (
    "aws:ec2/securityGroup:SecurityGroup",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
)
# Every taggable type the program declares: each must carry the stack's tags.
TAGGABLE_TYPES = (
    "aws:ec2/securityGroup:SecurityGroup",
    "aws:ec2/launchTemplate:LaunchTemplate",
    "aws:iam/role:Role",
    "aws:iam/instanceProfile:InstanceProfile",
    "aws:lb/loadBalancer:LoadBalancer",
    "aws:lb/targetGroup:TargetGroup",
    "aws:lb/listener:Listener",
    "aws:route53/zone:Zone",
    "aws:s3/bucket:Bucket",
)
AWS_NAME_LIMITS = {
    "aws:lb/loadBalancer:LoadBalancer": 32,
    "aws:lb/targetGroup:TargetGroup": 32,
    "aws:iam/role:Role": 64,
    "aws:iam/instanceProfile:InstanceProfile": 128,
    "aws:ec2/securityGroup:SecurityGroup": 255,
    "aws:autoscaling/group:Group": 255,
    "aws:ec2/launchTemplate:LaunchTemplate": 128,
}


@pytest.mark.parametrize("stack", STACKS)
def test_descriptions_are_accepted_by_aws(stack: str) -> None:
    for type_ in SECURITY_GROUP_TYPES:
        for resource in recorded(stack).of_type(type_):
            assert AWS_DESCRIPTION.fullmatch(resource.inputs["description"]), resource.name


@pytest.mark.parametrize("stack", STACKS)
def test_every_taggable_resource_carries_the_stack_tags(stack: str) -> None:
    run = recorded(stack)
    for type_ in TAGGABLE_TYPES:
        resources = run.of_type(type_)
        assert resources, type_
        for resource in resources:
            assert resource.inputs.get("tags", {}).get("Project") == "example", resource.name


@pytest.mark.parametrize("stack", STACKS)
def test_aws_names_fit_their_limits(stack: str) -> None:
    for type_, limit in AWS_NAME_LIMITS.items():
        for resource in recorded(stack).of_type(type_):
            assert len(resource.inputs["name"]) <= limit, resource.inputs["name"]
            if type_.startswith("aws:lb/"):
                assert not resource.inputs["name"].startswith("internal-"), resource.inputs["name"]
