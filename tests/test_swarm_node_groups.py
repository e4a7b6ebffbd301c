"""Whole program, both stacks: every SwarmNodeGroup property asserted on the recorded resources."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pytest

from components.node_drain import DRAIN_WINDOW_TAG
from offline.fake_cloud import ACCOUNT_ID, ROOT_DEVICE_NAME
from offline.harness import RecordedResource, StackRun
from offline.stack_files import stack_config_map
from rendering.yaml_text import decode_user_data
from stack_config.loader import load_stack_config
from stack_config.models import NodeGroup, StackConfig
from tests.conftest import STACKS, recorded

GROUP = "aws:autoscaling/group:Group"
TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
POLICY = "aws:autoscaling/policy:Policy"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
NODE_GROUP = "swarmcluster:nodes:SwarmNodeGroup"
SENSITIVE_PORTS = {22, 2375, 2376, 4000, 4789, 5000, 7946, 8300, 8301, 8302, 8500}


@cache
def config(stack: str) -> StackConfig:
    return load_stack_config(stack, *stack_config_map(stack))


def cases() -> list[tuple[str, str]]:
    return [(stack, group.name) for stack in STACKS for group in config(stack).nodeGroups]


def _group(stack: str, name: str) -> NodeGroup:
    return next(g for g in config(stack).nodeGroups if g.name == name)


def _component(group: NodeGroup) -> str:
    return "swarm-manager" if group.swarmManager else "swarm-node"


def _tags(asg: RecordedResource) -> dict[str, str]:
    """The tags instances get: all but the drain window, which is for the deploy's refresh wait only."""
    kept = [t for t in asg.inputs["tags"] if t["key"] != DRAIN_WINDOW_TAG]
    assert all(t["propagateAtLaunch"] is True for t in kept)
    return {t["key"]: t["value"] for t in kept}


def _sources(rules: list[dict[str, Any]]) -> set[str]:
    """Where the given ingress rules admit traffic from: CIDRs and security group ids."""
    return {r.get("cidrIpv4") or r["referencedSecurityGroupId"] for r in rules}


def _sg_id(run: StackRun, aws_name: str) -> str:
    [match] = [r for r in run.of_type(SECURITY_GROUP) if r.inputs["name"] == aws_name]
    return match.id


@pytest.mark.parametrize(("stack", "name"), cases())
def test_one_complete_component_per_group(stack: str, name: str) -> None:
    run = recorded(stack)
    component = run.named(NODE_GROUP, f"{stack}-{name}")
    kinds = {r.type for r in run.resources if _descends(run, r, component)}
    assert {GROUP, TEMPLATE, SECURITY_GROUP, "aws:iam/role:Role", "aws:iam/instanceProfile:InstanceProfile"} <= kinds
    assert (POLICY in kinds) == _group(stack, name).autoscaled


@pytest.mark.parametrize(("stack", "name"), cases())
def test_launch_template(stack: str, name: str) -> None:
    run, group, cfg = recorded(stack), _group(stack, name), config(stack)
    template = run.named(TEMPLATE, f"{stack}-{name}-lt").inputs
    assert template["name"] == f"{stack}-{name}"
    assert template["imageId"] == cfg.rancheros.amiId
    assert template["instanceType"] == group.instanceType
    assert template["metadataOptions"] == {
        "httpEndpoint": "enabled",
        "httpTokens": "optional",
        "httpPutResponseHopLimit": 1.0,
        "instanceMetadataTags": "enabled",
    }
    [device] = template["blockDeviceMappings"]
    assert device["deviceName"] == ROOT_DEVICE_NAME, "the root device name of the AMI the program looked up"
    assert device["ebs"]["encrypted"] == "true" and device["ebs"]["volumeType"] == "gp3"
    assert device["ebs"]["volumeSize"] == group.rootVolumeSizeGb
    assert device["ebs"].get("kmsKeyId") == cfg.rancheros.kmsKeyArn
    assert template["monitoring"] == {"enabled": True}
    assert template["updateDefaultVersion"] is True
    [volumes] = template["tagSpecifications"]  # instances are tagged by the group
    assert volumes == {
        "resourceType": "volume",
        "tags": {"Name": f"{stack}-{name}", "docker.environment": stack, "cluster.component": _component(group)},
    }
    assert template["iamInstanceProfile"]["arn"].endswith(f":instance-profile/{stack}-{name}")
    user_data = decode_user_data(template["userData"])
    assert user_data.startswith("#cloud-config\n")
    assert len(template["vpcSecurityGroupIds"]) == 2


@pytest.mark.parametrize(("stack", "name"), cases())
def test_autoscaling_group(stack: str, name: str) -> None:
    run, group, cfg = recorded(stack), _group(stack, name), config(stack)
    asg = run.named(GROUP, f"{stack}-{name}-asg").inputs
    assert asg["launchTemplate"]["version"] == "1", "pinned to the template's latest version number, not $Latest"
    assert asg["vpcZoneIdentifiers"] == [s.id for s in cfg.network.subnets]
    assert (asg["minSize"], asg["desiredCapacity"], asg["maxSize"]) == (
        group.minSize,
        group.desiredCapacity,
        group.maxSize,
    )
    assert asg["healthCheckGracePeriod"] > 0 and asg["defaultInstanceWarmup"] > 0
    assert "GroupInServiceInstances" in asg["enabledMetrics"]
    assert asg["terminationPolicies"][0] == "OldestLaunchTemplate"
    assert asg["protectFromScaleIn"] is group.scale_in_protected
    refresh = asg["instanceRefresh"]
    assert refresh["strategy"] == "Rolling"
    preferences = refresh["preferences"]
    assert preferences["scaleInProtectedInstances"] == "Refresh"
    if group.swarmManager:
        one_at_a_time = (0, 100) if group.desiredCapacity == 1 else (100, 110)
        assert (preferences["minHealthyPercentage"], preferences["maxHealthyPercentage"]) == one_at_a_time
    else:
        low, high = preferences["minHealthyPercentage"], preferences["maxHealthyPercentage"]
        assert low == group.minHealthyPercentage
        assert high > 100, "replacements launch before a node drains, so its containers have somewhere to go"
    assert asg["instanceMaintenancePolicy"] == {
        "minHealthyPercentage": preferences["minHealthyPercentage"],
        "maxHealthyPercentage": preferences["maxHealthyPercentage"],
    }


@pytest.mark.parametrize(("stack", "name"), cases())
def test_every_tag_is_propagated(stack: str, name: str) -> None:
    run, group, cfg = recorded(stack), _group(stack, name), config(stack)
    tags = _tags(run.named(GROUP, f"{stack}-{name}-asg"))
    assert tags["Name"] == f"{stack}-{name}"
    assert tags["docker.environment"] == stack
    assert tags["docker.role"] == group.role
    assert tags["cluster.component"] == _component(group)
    for key, value in group.labels.items():
        assert tags[key] == value
    for variable in cfg.tagVariables:
        assert tags[variable.tag] == variable.value
    for key, value in cfg.tags.items():
        assert tags[key] == value
    assert len(tags) <= 50


@pytest.mark.parametrize(("stack", "name"), cases())
def test_cpu_target_tracking(stack: str, name: str) -> None:
    run, group = recorded(stack), _group(stack, name)
    policies = [p for p in run.of_type(POLICY) if p.name == f"{stack}-{name}-cpu"]
    if not group.autoscaled:
        assert policies == []
        return
    [policy] = policies
    assert policy.inputs["policyType"] == "TargetTrackingScaling"
    assert policy.inputs["autoscalingGroupName"] == f"{stack}-{name}"
    tracking = policy.inputs["targetTrackingConfiguration"]
    assert tracking["predefinedMetricSpecification"]["predefinedMetricType"] == "ASGAverageCPUUtilization"
    assert tracking["targetValue"] == group.scaling.cpuTargetPercent
    assert tracking.get("disableScaleIn", False) is group.scaling.disableScaleIn


@pytest.mark.parametrize(("stack", "name"), cases())
def test_reservation_target_tracking(stack: str, name: str) -> None:
    run, group = recorded(stack), _group(stack, name)
    policies = [p for p in run.of_type(POLICY) if p.name == f"{stack}-{name}-reservation"]
    if not group.autoscaled:
        assert policies == []
        return
    [policy] = policies
    assert policy.inputs["autoscalingGroupName"] == f"{stack}-{name}"
    tracking = policy.inputs["targetTrackingConfiguration"]
    assert tracking["customizedMetricSpecification"] == {
        "namespace": f"SwarmCluster/{stack}",
        "metricName": "CapacityReservation",
        "metricDimensions": [{"name": "NodeGroup", "value": name}],
        "statistic": "Average",
        "unit": "Percent",
    }
    nodes = max(group.minSize, 2)
    expected = group.scaling.reservationTargetPercent or 100 * (nodes - 1) // nodes
    assert tracking["targetValue"] == expected
    assert tracking.get("disableScaleIn", False) is group.scaling.disableScaleIn


@pytest.mark.parametrize("stack", STACKS)
def test_manager_endpoint(stack: str) -> None:
    run, cfg = recorded(stack), config(stack)
    balancer = run.named("aws:lb/loadBalancer:LoadBalancer", f"{stack}-managers-endpoint-nlb").inputs
    assert balancer["internal"] is True and balancer["loadBalancerType"] == "network"
    target_group = run.named("aws:lb/targetGroup:TargetGroup", f"{stack}-managers-endpoint-tg").inputs
    assert (target_group["port"], target_group["protocol"]) == (4000, "TCP")
    record = run.named("aws:route53/record:Record", f"{stack}-managers-endpoint-dns").inputs
    assert record["name"] == f"swarm.{cfg.dns.internalZone}"
    asg = run.named(GROUP, f"{stack}-managers-asg").inputs
    target_group_arn = run.named("aws:lb/targetGroup:TargetGroup", f"{stack}-managers-endpoint-tg").outputs["arn"]
    assert asg["targetGroupArns"] == [target_group_arn]
    assert run.exports["swarmManagerEndpoint"] == f"swarm.{cfg.dns.internalZone}:4000"


@pytest.mark.parametrize("stack", STACKS)
def test_no_cluster_port_is_open_to_the_world(stack: str) -> None:
    for rule in recorded(stack).of_type(INGRESS):
        world = rule.inputs.get("cidrIpv4") == "0.0.0.0/0" or rule.inputs.get("cidrIpv6") == "::/0"
        low, high = rule.inputs.get("fromPort", 0), rule.inputs.get("toPort", 65535)
        exposed = {p for p in SENSITIVE_PORTS if low <= p <= high} or rule.inputs["ipProtocol"] == "-1"
        assert not (world and exposed), f"{rule.name} opens {low}-{high} to the world"


@pytest.mark.parametrize("stack", STACKS)
def test_docker_api_only_from_managers(stack: str) -> None:
    run = recorded(stack)
    rules = [r for r in run.of_type(INGRESS) if r.inputs.get("fromPort") == 2375]
    assert len(rules) == 1
    [rule] = rules
    assert rule.inputs["securityGroupId"] == _sg_id(run, f"{stack}-nodes")
    assert rule.inputs["referencedSecurityGroupId"] == _sg_id(run, f"{stack}-managers")
    assert "cidrIpv4" not in rule.inputs


@pytest.mark.parametrize("stack", STACKS)
def test_swarm_manager_port_only_from_admins_and_its_balancer(stack: str) -> None:
    run, cfg = recorded(stack), config(stack)
    balancer_sg = _sg_id(run, f"{stack}-swarm-lb")
    rules = [r.inputs for r in run.of_type(INGRESS) if r.inputs.get("fromPort") == 4000]
    sources = _sources(rules)
    managers = _sg_id(run, f"{stack}-managers")  # replicas forward to the primary
    assert sources == {*cfg.access.adminCidrs, *cfg.access.adminSecurityGroupIds, balancer_sg, managers}


@pytest.mark.parametrize("stack", STACKS)
def test_overlay_only_among_nodes_and_no_ssh_by_default(stack: str) -> None:
    run = recorded(stack)
    nodes = _sg_id(run, f"{stack}-nodes")
    overlay = [r for r in run.of_type(INGRESS) if r.inputs.get("fromPort") in (7946, 4789)]
    assert {(r.inputs["ipProtocol"], r.inputs["fromPort"]) for r in overlay} == {
        ("tcp", 7946),
        ("udp", 7946),
        ("udp", 4789),
    }
    assert all(r.inputs["referencedSecurityGroupId"] == nodes == r.inputs["securityGroupId"] for r in overlay)
    assert not [r for r in run.of_type(INGRESS) if r.inputs.get("fromPort") == 22]


@pytest.mark.parametrize("stack", STACKS)
def test_public_ports_only_where_a_group_asks(stack: str) -> None:
    run, cfg = recorded(stack), config(stack)
    world = {r.name for r in run.of_type(INGRESS) if r.inputs.get("cidrIpv4") == "0.0.0.0/0"}
    asked = {
        f"{stack}-{g.name}-in-{i.protocol}-{i.port}-{k}"
        for g in cfg.nodeGroups
        for i in g.ingress
        for k, cidr in enumerate(i.cidrs)
        if cidr == "0.0.0.0/0"
    }
    assert world == asked and asked


@pytest.mark.parametrize(("stack", "name"), cases())
def test_node_role_carries_its_own_drain_its_agents_the_managers_metric_right_and_optional_ssm(
    stack: str, name: str
) -> None:
    run, cfg = recorded(stack), config(stack)
    role = run.named("aws:iam/role:Role", f"{stack}-{name}-role").inputs
    assert json.loads(role["assumeRolePolicy"])["Statement"][0]["Principal"] == {"Service": "ec2.amazonaws.com"}
    policy = json.loads(run.named("aws:iam/rolePolicy:RolePolicy", f"{stack}-{name}-policy").inputs["policy"])
    key = run.named("aws:s3/bucketObjectv2:BucketObjectv2", f"{stack}-cluster-node-agents-object").inputs["key"]
    metric = {
        "Effect": "Allow",
        "Action": "cloudwatch:PutMetricData",
        "Resource": "*",
        "Condition": {"StringEquals": {"cloudwatch:namespace": f"SwarmCluster/{stack}"}},
    }
    expected = [
        {
            "Sid": "DrainOwnNode",
            "Effect": "Allow",
            "Action": ["autoscaling:CompleteLifecycleAction", "autoscaling:RecordLifecycleActionHeartbeat"],
            "Resource": f"arn:aws:autoscaling:{cfg.region}:{ACCOUNT_ID}:autoScalingGroup:*:"
            f"autoScalingGroupName/{stack}-{name}",
        },
        *([metric] if _group(stack, name).swarmManager else []),
        {
            "Sid": "FetchNodeAgents",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{cfg.registry.bucketName}/{key}",
        },
    ]
    if cfg.rancheros.kmsKeyArn:
        expected.append(
            {
                "Sid": "DecryptNodeAgents",
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": cfg.rancheros.kmsKeyArn,
                "Condition": {"StringEquals": {"kms:ViaService": f"s3.{cfg.region}.amazonaws.com"}},
            }
        )
    assert policy["Statement"] == expected
    attached = [
        a
        for a in run.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.name.startswith(f"{stack}-{name}-")
    ]
    assert len(attached) == int(config(stack).access.ssmSessionManager)


def test_group_outputs_are_exported() -> None:
    run = recorded("production")
    exported = run.exports["nodeGroups"]
    assert set(exported) == {g.name for g in config("production").nodeGroups}
    assert exported["web"]["autoscalingGroupName"] == "production-web"
    assert exported["web"]["launchTemplateVersion"] == 1
    assert exported["web"]["roleArn"].endswith(":role/production-web")


def _descends(run: StackRun, resource: RecordedResource, ancestor: RecordedResource) -> bool:
    parent = resource.parent
    while parent is not None:
        if parent == ancestor.urn:
            return True
        parent = next((r.parent for r in run.resources if r.urn == parent), None)
    return False
