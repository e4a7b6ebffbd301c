"""Unit tests of the CrossGuard policy pack: each rule's validate called directly, as the analyzer would call it.

Props go through pulumi-policy's own unknown-checking proxy (tests.policy_check.resource_args), and unknown values
are the engine's sentinel strings, so "unknown during preview" is exercised exactly as `pulumi preview` delivers it.
The last tests start the pack the way the CLI does and talk to it over gRPC on 127.0.0.1.
"""

from __future__ import annotations

import base64
import importlib
import os
import selectors
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc
from pulumi_policy import EnforcementLevel, PolicyResource, StackValidationArgs
from pulumi_policy.proxy import UNKNOWN_ARRAY_VALUE, UNKNOWN_NUMBER_VALUE, UNKNOWN_STRING_VALUE

from policies import rules
from tests.policy_check import collect_resource, collect_stack, policy_resource, resource_args, violations

ROOT = Path(__file__).resolve().parent.parent
# grpc and protobuf ship no type information (and types-protobuf is not a dev dependency): load them untyped.
empty_pb2: Any = importlib.import_module("google.protobuf.empty_pb2")
struct_pb2: Any = importlib.import_module("google.protobuf.struct_pb2")
PUBLIC_V4, PUBLIC_V6 = "0.0.0.0/0", "::/0"


@pytest.fixture(autouse=True)
def _no_engine_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    """Policies read PULUMI_STACK (set by the CLI); keep a developer's shell from leaking one in."""
    monkeypatch.delenv("PULUMI_STACK", raising=False)


def check(policy: Any, resource_type: str, props: Mapping[str, Any]) -> list[str]:
    return collect_resource(policy, resource_args(resource_type, props))


# --- the pack ---------------------------------------------------------------------------------------------------


def test_every_policy_is_mandatory_and_uniquely_named() -> None:
    names = [p.name for p in rules.POLICIES]
    assert len(names) == len(set(names)) == 7
    assert all(p.enforcement_level == EnforcementLevel.MANDATORY for p in rules.POLICIES)


# --- no-public-cluster-ports ------------------------------------------------------------------------------------


def sg(*ingress: Mapping[str, Any]) -> dict[str, Any]:
    return {"name": "workers", "vpcId": "vpc-1", "ingress": list(ingress)}


def tcp(low: float, high: float, *cidrs: str, v6: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"protocol": "tcp", "fromPort": low, "toPort": high, "cidrBlocks": list(cidrs), "ipv6CidrBlocks": list(v6)}


P = rules.no_public_cluster_ports


@pytest.mark.parametrize("port", rules.CLUSTER_PORTS)
def test_security_group_cluster_port_open_to_internet_is_a_violation(port: int) -> None:
    [message] = check(P, rules.SECURITY_GROUP, sg(tcp(float(port), float(port), PUBLIC_V4)))
    assert str(port) in message and PUBLIC_V4 in message and "ingress[0]" in message


def test_security_group_compliant_rules_pass() -> None:
    props = sg(
        tcp(443.0, 443.0, PUBLIC_V4, v6=(PUBLIC_V6,)),  # HTTPS may be public
        tcp(22.0, 22.0, "10.0.0.0/8"),  # SSH from the VPN only
        {"protocol": "-1", "fromPort": 0.0, "toPort": 0.0, "cidrBlocks": ["10.20.0.0/16"]},
        {"protocol": "icmp", "fromPort": 8.0, "toPort": 0.0, "cidrBlocks": [PUBLIC_V4]},  # ICMP type 8, not port 8
        {"protocol": "tcp", "fromPort": 2376.0, "toPort": 2376.0, "securityGroups": ["sg-managers"]},
    )
    assert check(P, rules.SECURITY_GROUP, props) == []


def test_range_all_protocols_and_ipv6_count() -> None:
    props = sg(
        tcp(1.0, 65535.0, "10.0.0.0/8", PUBLIC_V4),
        {"protocol": "-1", "fromPort": 0.0, "toPort": 0.0, "ipv6CidrBlocks": [PUBLIC_V6]},
        {"protocol": "udp", "fromPort": 4700.0, "toPort": 4800.0, "cidrBlocks": [PUBLIC_V4]},
        {"protocol": "6", "fromPort": 8300.0, "toPort": 8302.0, "cidrBlocks": [PUBLIC_V4]},
    )
    first, everything, vxlan, consul = check(P, rules.SECURITY_GROUP, props)
    assert "1-65535" in first and "22, 2375" in first and "8500" in first
    assert "all traffic" in everything and PUBLIC_V6 in everything
    assert "4789" in vxlan and "22" not in vxlan
    assert "8300, 8301, 8302" in consul


def test_security_group_rule_resource() -> None:
    bad = {"type": "ingress", "protocol": "tcp", "fromPort": 2375.0, "toPort": 2376.0, "cidrBlocks": [PUBLIC_V4]}
    [message] = check(P, rules.SECURITY_GROUP_RULE, bad)
    assert "2375, 2376" in message
    assert check(P, rules.SECURITY_GROUP_RULE, {**bad, "type": "egress"}) == []
    assert check(P, rules.SECURITY_GROUP_RULE, {**bad, "cidrBlocks": ["192.168.0.0/16"]}) == []


def test_vpc_security_group_ingress_rule_resource() -> None:
    bad = {"securityGroupId": "sg-1", "ipProtocol": "tcp", "fromPort": 5000.0, "toPort": 5000.0, "cidrIpv4": PUBLIC_V4}
    assert len(check(P, rules.VPC_INGRESS_RULE, bad)) == 1
    assert len(check(P, rules.VPC_INGRESS_RULE, {"ipProtocol": "-1", "cidrIpv6": PUBLIC_V6})) == 1
    assert check(P, rules.VPC_INGRESS_RULE, {**bad, "cidrIpv4": "10.0.0.0/8"}) == []
    assert check(P, rules.VPC_INGRESS_RULE, {**bad, "fromPort": 443.0, "toPort": 443.0}) == []


def test_unknown_ingress_values_report_nothing_but_known_rules_still_count() -> None:
    props = sg(
        {"protocol": "tcp", "fromPort": 22.0, "toPort": 22.0, "cidrBlocks": UNKNOWN_ARRAY_VALUE},
        {"protocol": "tcp", "fromPort": UNKNOWN_NUMBER_VALUE, "toPort": 22.0, "cidrBlocks": [PUBLIC_V4]},
        {"protocol": UNKNOWN_STRING_VALUE, "fromPort": 0.0, "toPort": 0.0, "cidrBlocks": [PUBLIC_V4]},
        tcp(22.0, 22.0, UNKNOWN_STRING_VALUE),
        tcp(7946.0, 7946.0, PUBLIC_V4),
    )
    [message] = check(P, rules.SECURITY_GROUP, props)
    assert "ingress[4]" in message
    assert check(P, rules.SECURITY_GROUP, {"ingress": UNKNOWN_ARRAY_VALUE}) == []
    assert (
        check(P, rules.SECURITY_GROUP_RULE, {"type": UNKNOWN_STRING_VALUE, "protocol": "-1", "cidrBlocks": [PUBLIC_V4]})
        == []
    )


# --- ebs-encrypted ----------------------------------------------------------------------------------------------

E = rules.ebs_encrypted


def test_ebs_volume_encryption() -> None:
    assert check(E, rules.EBS_VOLUME, {"availabilityZone": "eu-west-1a", "size": 20.0, "encrypted": True}) == []
    assert len(check(E, rules.EBS_VOLUME, {"availabilityZone": "eu-west-1a", "encrypted": False})) == 1
    assert len(check(E, rules.EBS_VOLUME, {"availabilityZone": "eu-west-1a"})) == 1  # AWS default: unencrypted
    assert check(E, rules.EBS_VOLUME, {"encrypted": UNKNOWN_STRING_VALUE}) == []


def lt(*mappings: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    return {"imageId": "ami-1", "blockDeviceMappings": list(mappings), **extra}


def test_launch_template_block_devices_encryption() -> None:
    good = lt(
        {"deviceName": "/dev/sda1", "ebs": {"volumeSize": 16.0, "encrypted": "true"}},
        {"deviceName": "/dev/xvdf", "ebs": {"volumeSize": 100.0, "encrypted": True}},
        {"deviceName": "/dev/sdb", "virtualName": "ephemeral0"},
    )
    assert check(E, rules.LAUNCH_TEMPLATE, good) == []
    assert check(E, rules.LAUNCH_TEMPLATE, {"imageId": "ami-1"}) == []
    bad = lt(
        {"deviceName": "/dev/sda1", "ebs": {"encrypted": "true"}},
        {"deviceName": "/dev/xvdf", "ebs": {"volumeSize": 100.0, "encrypted": "false"}},
        {"deviceName": "/dev/xvdg", "ebs": {"volumeSize": 100.0}},
    )
    messages = check(E, rules.LAUNCH_TEMPLATE, bad)
    assert [("[1]" in m and "/dev/xvdf" in m, "[2]" in m) for m in messages] == [(True, False), (False, True)]
    unknown = lt({"deviceName": "/dev/sda1", "ebs": {"encrypted": UNKNOWN_STRING_VALUE}})
    assert check(E, rules.LAUNCH_TEMPLATE, unknown) == []


def instance(root: Any = None, *ebs: Mapping[str, Any]) -> dict[str, Any]:
    props: dict[str, Any] = {"ami": "ami-1", "instanceType": "t3.small", "ebsBlockDevices": list(ebs)}
    if root is not None:
        props["rootBlockDevice"] = root
    return props


ENCRYPTED_ROOT = {"volumeSize": 16.0, "encrypted": True}
DATA = {"deviceName": "/dev/xvdf", "volumeSize": 100.0, "encrypted": True}


@pytest.mark.parametrize("kind", [rules.INSTANCE, rules.LAUNCH_CONFIGURATION])
def test_instance_disks_encrypted_pass(kind: str) -> None:
    assert check(E, kind, instance(ENCRYPTED_ROOT, DATA, {**DATA, "deviceName": "/dev/xvdg"})) == []
    assert check(E, kind, instance(ENCRYPTED_ROOT)) == []


@pytest.mark.parametrize("kind", [rules.INSTANCE, rules.LAUNCH_CONFIGURATION])
def test_instance_unencrypted_root(kind: str) -> None:
    [message] = check(E, kind, instance({"volumeSize": 16.0, "encrypted": False}, DATA))
    assert message.startswith("rootBlockDevice is not encrypted")
    assert len(check(E, kind, instance({"volumeSize": 16.0}))) == 1  # AWS default: unencrypted


@pytest.mark.parametrize("kind", [rules.INSTANCE, rules.LAUNCH_CONFIGURATION])
def test_instance_without_root_block_device(kind: str) -> None:
    [message] = check(E, kind, instance(None, DATA))
    assert "rootBlockDevice is not declared" in message and "encrypted=True" in message


@pytest.mark.parametrize("kind", [rules.INSTANCE, rules.LAUNCH_CONFIGURATION])
def test_instance_unencrypted_ebs_block_device(kind: str) -> None:
    [message] = check(E, kind, instance(ENCRYPTED_ROOT, DATA, {"deviceName": "/dev/xvdg", "volumeSize": 50.0}))
    assert message.startswith("ebsBlockDevices[1] (/dev/xvdg) is not encrypted")


def test_instance_unknown_disk_values_are_skipped() -> None:
    unknown_flag = {**DATA, "encrypted": UNKNOWN_STRING_VALUE}
    assert check(E, rules.INSTANCE, instance({"encrypted": UNKNOWN_STRING_VALUE}, unknown_flag)) == []
    assert check(E, rules.INSTANCE, instance(UNKNOWN_STRING_VALUE, UNKNOWN_STRING_VALUE)) == []
    assert check(E, rules.INSTANCE, {**instance(ENCRYPTED_ROOT), "ebsBlockDevices": UNKNOWN_ARRAY_VALUE}) == []
    # an unknown device does not hide a known unencrypted one
    [message] = check(E, rules.INSTANCE, instance(ENCRYPTED_ROOT, unknown_flag, {**DATA, "encrypted": False}))
    assert "ebsBlockDevices[1]" in message


# --- s3-bucket-protected ----------------------------------------------------------------------------------------

BUCKET = "aws:s3/bucket:Bucket"
PAB = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
ALL_BLOCKED = {
    "blockPublicAcls": True,
    "blockPublicPolicy": True,
    "ignorePublicAcls": True,
    "restrictPublicBuckets": True,
}
AES = {"rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]}
ENABLED = {"versioningConfiguration": {"status": "Enabled"}}


def companions(bucket_ref: Any, **deps: list[PolicyResource]) -> list[PolicyResource]:
    def dep(kind: str) -> dict[str, list[PolicyResource]] | None:
        return {"bucket": deps[kind]} if kind in deps else None

    return [
        policy_resource(PAB, {"bucket": bucket_ref, **ALL_BLOCKED}, name="pab", property_dependencies=dep("pab")),
        policy_resource(SSE, {"bucket": bucket_ref, **AES}, name="sse", property_dependencies=dep("sse")),
        policy_resource(VERSIONING, {"bucket": bucket_ref, **ENABLED}, name="ver", property_dependencies=dep("ver")),
    ]


def stack_check(*resources: PolicyResource) -> list[tuple[str, str | None]]:
    return collect_stack(rules.s3_bucket_protected, StackValidationArgs(list(resources)))


def test_bucket_with_all_companions_matched_by_name_passes() -> None:
    bucket = policy_resource(BUCKET, {"bucket": "swarm-staging-registry"}, name="registry")
    assert stack_check(bucket, *companions("swarm-staging-registry")) == []


def test_bucket_v2_type_is_covered() -> None:
    bucket = policy_resource("aws:s3/bucketV2:BucketV2", {"bucket": "b2"}, name="b2")
    assert len(stack_check(bucket)) == 3


def test_bucket_without_companions_gets_three_violations_on_its_urn() -> None:
    bucket = policy_resource(BUCKET, {"bucket": "swarm-staging-registry"}, name="registry")
    other = policy_resource(BUCKET, {"bucket": "other"}, name="other")
    found = stack_check(bucket, other, *companions("other"))
    assert [urn for _, urn in found] == [bucket.urn] * 3
    assert ["public access block" in found[0][0], "encryption" in found[1][0], "versioning" in found[2][0]] == [
        True
    ] * 3


def test_weak_companions_are_violations() -> None:
    bucket = policy_resource(BUCKET, {"bucket": "b"}, name="b")
    weak = [
        policy_resource(PAB, {"bucket": "b", **ALL_BLOCKED, "restrictPublicBuckets": False}, name="pab"),
        policy_resource(SSE, {"bucket": "b", "rules": []}, name="sse"),
        policy_resource(VERSIONING, {"bucket": "b", "versioningConfiguration": {"status": "Suspended"}}, name="ver"),
    ]
    found = stack_check(bucket, *weak)
    assert len(found) == 3 and all("does not provide it" in m for m, _ in found)


def test_preview_matches_by_property_dependency_when_the_bucket_id_is_unknown() -> None:
    bucket = policy_resource(BUCKET, {"bucket": "b"}, name="b")
    deps = {kind: [bucket] for kind in ("pab", "sse", "ver")}
    assert stack_check(bucket, *companions(UNKNOWN_STRING_VALUE, **deps)) == []


def test_unknowns_never_produce_false_violations() -> None:
    # companions whose bucket is unknown with no dependency info: undecidable, so quiet
    bucket = policy_resource(BUCKET, {"bucket": "b"}, name="b")
    assert stack_check(bucket, *companions(UNKNOWN_STRING_VALUE)) == []
    # a bucket whose name is unknown, companions naming something else: they might be its companions
    unnamed = policy_resource(BUCKET, {"bucket": UNKNOWN_STRING_VALUE}, name="u")
    assert stack_check(unnamed, *companions("b")) == []
    # unknown flag values
    flags = policy_resource(PAB, {"bucket": "b", **ALL_BLOCKED, "ignorePublicAcls": UNKNOWN_STRING_VALUE}, name="pab")
    found = stack_check(bucket, flags, *companions("b")[1:])
    assert found == []


def test_unknown_bucket_name_without_companions_is_still_a_violation() -> None:
    unnamed = policy_resource(BUCKET, {"bucket": UNKNOWN_STRING_VALUE}, name="u")
    assert len(stack_check(unnamed)) == 3


def test_deprecated_inline_encryption_and_versioning_count() -> None:
    inline = {
        "bucket": "b",
        "serverSideEncryptionConfiguration": {
            "rule": {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms"}}
        },
        "versioning": {"enabled": True},
    }
    bucket = policy_resource(BUCKET, inline, name="b")
    [(message, _)] = stack_check(bucket)
    assert "public access block" in message


# --- asg-no-latest-launch-template ------------------------------------------------------------------------------

GROUP = rules.AUTOSCALING_GROUP


def asg(
    *,
    component: str | None = None,
    environment: str = "staging",
    subnets: Any = ("subnet-a", "subnet-b"),
    **extra: Any,
) -> dict[str, Any]:
    tags = [{"key": rules.ENVIRONMENT_TAG, "value": environment, "propagateAtLaunch": True}]
    if component is not None:
        tags.append({"key": rules.COMPONENT_TAG, "value": component, "propagateAtLaunch": True})
    props = {
        "minSize": 1.0,
        "maxSize": 5.0,
        "desiredCapacity": 2.0,
        "vpcZoneIdentifiers": list(subnets) if isinstance(subnets, tuple) else subnets,
        "launchTemplate": {"id": "lt-1", "version": "3"},
        "tags": tags,
    }
    props.update(extra)
    return props


def test_latest_launch_template_version() -> None:
    L = rules.asg_pinned_launch_template
    assert check(L, GROUP, asg()) == []
    assert check(L, GROUP, asg(launchTemplate={"id": "lt-1", "version": "$Default"})) == []
    [message] = check(L, GROUP, asg(launchTemplate={"id": "lt-1", "version": "$Latest"}))
    assert "launchTemplate.version" in message
    mixed = {
        "launchTemplate": {
            "launchTemplateSpecification": {"launchTemplateId": "lt-1", "version": "$Latest"},
            "overrides": [
                {"instanceType": "t3.large"},
                {
                    "instanceType": "m5.large",
                    "launchTemplateSpecification": {"launchTemplateId": "lt-2", "version": "$Latest"},
                },
            ],
        }
    }
    messages = check(L, GROUP, asg(launchTemplate=None, mixedInstancesPolicy=mixed))
    assert len(messages) == 2 and "overrides[1]" in messages[1]
    assert check(L, GROUP, asg(launchTemplate={"id": "lt-1", "version": UNKNOWN_STRING_VALUE})) == []


# --- user-data-size-limit ---------------------------------------------------------------------------------------

U = rules.user_data_size


def b64(size: int) -> str:
    return base64.b64encode(b"#cloud-config\n".ljust(size, b"x")).decode()


def test_launch_template_user_data_limit_is_measured_before_base64() -> None:
    assert check(U, rules.LAUNCH_TEMPLATE, lt(userData=b64(16384))) == []  # base64 of it is ~21.8 KB: still fine
    [message] = check(U, rules.LAUNCH_TEMPLATE, lt(userData=b64(16385)))
    assert "16385 bytes" in message
    assert check(U, rules.LAUNCH_TEMPLATE, lt(userData=UNKNOWN_STRING_VALUE)) == []
    assert check(U, rules.LAUNCH_TEMPLATE, lt()) == []


def test_instance_user_data_plain_and_base64() -> None:
    assert check(U, rules.INSTANCE, {"ami": "ami-1", "userData": "é" * 8192}) == []  # 16384 bytes of UTF-8
    assert len(check(U, rules.INSTANCE, {"ami": "ami-1", "userData": "é" * 8192 + "x"})) == 1
    assert check(U, rules.INSTANCE, {"ami": "ami-1", "userDataBase64": b64(1000)}) == []
    assert len(check(U, rules.INSTANCE, {"ami": "ami-1", "userDataBase64": b64(20000)})) == 1


# --- production-asg-multi-subnet --------------------------------------------------------------------------------

S = rules.production_asg_subnets


def test_production_groups_need_two_subnets() -> None:
    assert check(S, GROUP, asg(environment="production")) == []
    assert check(S, GROUP, asg(environment="staging", subnets=("subnet-a",))) == []
    [message] = check(S, GROUP, asg(environment="production", subnets=("subnet-a",)))
    assert "1 subnet " in message
    assert len(check(S, GROUP, asg(environment="production", subnets=("subnet-a", "subnet-a")))) == 1
    assert len(check(S, GROUP, asg(environment="production", subnets=()))) == 1


def test_production_detected_from_the_engine_stack_name(monkeypatch: pytest.MonkeyPatch) -> None:
    untagged = asg(subnets=("subnet-a",), tags=[])
    assert check(S, GROUP, untagged) == []
    monkeypatch.setenv("PULUMI_STACK", "production")
    assert len(check(S, GROUP, untagged)) == 1
    monkeypatch.setenv("PULUMI_STACK", "acme/production")
    assert len(check(S, GROUP, untagged)) == 1
    monkeypatch.setenv("PULUMI_STACK", "staging")  # the tag alone still marks production (fail closed)
    assert len(check(S, GROUP, asg(environment="production", subnets=("subnet-a",)))) == 1


def test_production_subnets_unknowns() -> None:
    assert check(S, GROUP, asg(environment="production", subnets=UNKNOWN_ARRAY_VALUE)) == []
    assert check(S, GROUP, asg(environment="production", subnets=(UNKNOWN_STRING_VALUE, "subnet-a"))) == []
    assert len(check(S, GROUP, asg(environment="production", subnets=(UNKNOWN_STRING_VALUE,)))) == 1
    unknown_env = asg(subnets=("subnet-a",), tags=[{"key": rules.ENVIRONMENT_TAG, "value": UNKNOWN_STRING_VALUE}])
    assert check(S, GROUP, unknown_env) == []


# --- quorum-groups-odd-size -------------------------------------------------------------------------------------

Q = rules.quorum_group_size


@pytest.mark.parametrize("component", sorted(rules.QUORUM_COMPONENTS))
def test_quorum_groups_need_an_odd_size(component: str) -> None:
    assert check(Q, GROUP, asg(component=component, minSize=3.0, maxSize=3.0, desiredCapacity=3.0)) == []
    assert check(Q, GROUP, asg(component=component, minSize=1.0, maxSize=5.0, desiredCapacity=3.0)) == []
    [message] = check(Q, GROUP, asg(component=component, minSize=1.0, maxSize=5.0, desiredCapacity=2.0))
    assert "desiredCapacity is 2" in message and component in message
    fixed_even = check(Q, GROUP, asg(component=component, minSize=4.0, maxSize=4.0, desiredCapacity=4.0))
    assert [m.split(" is ")[0] for m in fixed_even] == ["desiredCapacity", "minSize", "maxSize"]
    no_desired = asg(component=component, minSize=2.0, maxSize=6.0)
    del no_desired["desiredCapacity"]
    assert len(check(Q, GROUP, no_desired)) == 1  # AWS starts at minSize


def test_other_groups_and_unknown_sizes_are_not_checked() -> None:
    assert check(Q, GROUP, asg(component="swarm-worker", desiredCapacity=4.0)) == []
    assert check(Q, GROUP, asg(desiredCapacity=4.0)) == []
    assert check(Q, GROUP, asg(component="consul-server", desiredCapacity=UNKNOWN_NUMBER_VALUE)) == []


# --- the offline runner -----------------------------------------------------------------------------------------


@dataclass
class Fake:
    type: str
    name: str
    inputs: dict[str, Any]
    parent: str | None = None
    protect: bool = False
    custom: bool = True
    urn: str = field(default="")

    def __post_init__(self) -> None:
        self.urn = self.urn or f"urn:pulumi:staging::swarm-cluster::{self.type}::{self.name}"


def test_violations_formats_resource_and_stack_findings() -> None:
    found = violations(
        [
            Fake("swarm:index:Cluster", "cluster", {}, custom=False),
            Fake(rules.SECURITY_GROUP, "managers", sg(tcp(22.0, 22.0, PUBLIC_V4))),
            Fake(BUCKET, "registry", {"bucket": "r"}),
            Fake(PAB, "registry-pab", {"bucket": "r", **ALL_BLOCKED}),
            Fake(SSE, "registry-sse", {"bucket": "r", **AES}),
        ]
    )
    assert [f.split(": ")[:2] for f in found] == [
        ["no-public-cluster-ports", f"{rules.SECURITY_GROUP} managers"],
        ["s3-bucket-protected", f"{BUCKET} registry"],
    ]


def test_violations_takes_the_stack_name_like_the_engine() -> None:
    group = Fake(GROUP, "workers", asg(subnets=("subnet-a",), tags=[]))
    assert violations([group]) == []
    [finding] = violations([group], stack="production")
    assert finding.startswith("production-asg-multi-subnet: aws:autoscaling/group:Group workers: ")
    assert "PULUMI_STACK" not in os.environ


# --- the pack as the CLI runs it --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def analyzer() -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    """`python -m pulumi.policy <engine> .` in policies/, as the CLI starts a Python policy pack."""
    env = {**os.environ, "PULUMI_STACK": "production", "PULUMI_PROJECT": "swarm-cluster", "PULUMI_DRY_RUN": "true"}
    process = subprocess.Popen(
        [sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:1", "."],
        cwd=ROOT / "policies",
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    grpc: Any = importlib.import_module("grpc")
    selector = selectors.DefaultSelector()
    try:
        assert process.stdout is not None
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout=60):
            pytest.fail("the policy pack printed no port within 60 s")
        port = int(process.stdout.readline().decode().strip() or 0)
        if not port:
            assert process.stderr is not None
            pytest.fail(f"the policy pack did not start: {process.stderr.read().decode()}")
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield analyzer_pb2_grpc.AnalyzerStub(channel)
    finally:
        selector.close()
        process.terminate()
        process.communicate(timeout=10)  # reaps it and closes both pipes


def struct(props: Mapping[str, Any]) -> Any:
    message = struct_pb2.Struct()
    message.update(props)
    return message


def analyze(stub: analyzer_pb2_grpc.AnalyzerStub, resource_type: str, props: Mapping[str, Any]) -> list[Any]:
    request = analyzer_pb2.AnalyzeRequest(
        type=resource_type,
        name="r",
        urn=f"urn:pulumi:production::swarm-cluster::{resource_type}::r",
        properties=struct(props),
    )
    return list(stub.Analyze(request).diagnostics)


def test_cli_pack_serves_every_policy_as_mandatory(analyzer: analyzer_pb2_grpc.AnalyzerStub) -> None:
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty())
    assert info.name == rules.PACK_NAME
    assert sorted(p.name for p in info.policies) == sorted(p.name for p in rules.POLICIES)
    assert {p.enforcementLevel for p in info.policies} == {analyzer_pb2.MANDATORY}


def test_cli_pack_blocks_public_ssh_and_skips_unknowns(analyzer: analyzer_pb2_grpc.AnalyzerStub) -> None:
    [violation] = analyze(analyzer, rules.SECURITY_GROUP, sg(tcp(22.0, 22.0, PUBLIC_V4)))
    assert violation.policyName == "no-public-cluster-ports" and violation.enforcementLevel == analyzer_pb2.MANDATORY
    unknown = {"ingress": [{"protocol": "tcp", "fromPort": 22, "toPort": 22, "cidrBlocks": UNKNOWN_ARRAY_VALUE}]}
    assert analyze(analyzer, rules.SECURITY_GROUP, unknown) == []


def test_cli_pack_reads_the_stack_name_from_the_engine(analyzer: analyzer_pb2_grpc.AnalyzerStub) -> None:
    [violation] = analyze(analyzer, GROUP, asg(subnets=("subnet-a",), tags=[]))
    assert violation.policyName == "production-asg-multi-subnet"


def test_cli_pack_runs_the_stack_policy(analyzer: analyzer_pb2_grpc.AnalyzerStub) -> None:
    def resource(kind: str, name: str, props: Mapping[str, Any]) -> Any:
        urn = f"urn:pulumi:production::swarm-cluster::{kind}::{name}"
        return analyzer_pb2.AnalyzerResource(type=kind, name=name, urn=urn, properties=struct(props))

    request = analyzer_pb2.AnalyzeStackRequest(
        resources=[
            resource(BUCKET, "logs", {"bucket": "logs"}),
            resource(PAB, "logs-pab", {"bucket": "logs", **ALL_BLOCKED}),
        ]
    )
    found = list(analyzer.AnalyzeStack(request).diagnostics)
    assert [d.policyName for d in found] == ["s3-bucket-protected"] * 2
    assert {d.urn for d in found} == {"urn:pulumi:production::swarm-cluster::aws:s3/bucket:Bucket::logs"}
