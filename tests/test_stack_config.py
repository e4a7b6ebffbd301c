"""The stack config models and rules: both stack files load, and every kind of mistake is named precisely."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from offline.stack_files import stack_config_map
from stack_config.loader import SECRET_KEYS, ConfigError, load_stack_config
from stack_config.models import StackConfig

Raw = dict[str, Any]
# `Pulumi.<stack>.yaml: <key path>: <what is wrong>; <what is allowed>`
PROBLEM_LINE = re.compile(r"Pulumi\.[a-z-]+\.yaml: \S+: [^;]+; .+")


def _raw(stack: str) -> Raw:
    values, _ = stack_config_map(stack)
    return {
        k: json.loads(v) if k.startswith("swarm-cluster:") and k.partition(":")[2] not in SECRET_KEYS else v
        for k, v in values.items()
    }


def _load(stack: str, raw: Raw) -> StackConfig:
    flat = {k: v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()}
    return load_stack_config(stack, flat, stack_config_map(stack)[1])


def _problems(stack: str, mutate: Callable[[Raw], None]) -> list[str]:
    raw = _raw(stack)
    mutate(raw)
    with pytest.raises(ConfigError) as caught:
        _load(stack, raw)
    return str(caught.value).splitlines()[1:]


@pytest.mark.parametrize("stack", ["staging", "production"])
def test_committed_stack_files_are_valid(stack: str) -> None:
    config = _load(stack, _raw(stack))
    assert config.cluster.environment == stack
    assert {g.name for g in config.nodeGroups} == {"managers", "frontend", "web", "services", "queue", "db"}
    assert {t.variable for t in config.tagVariables} == {"DB_HOST", "QUEUE_HOST"}


def test_production_is_highly_available_and_staging_is_small() -> None:
    staging, production = (_load(s, _raw(s)) for s in ("staging", "production"))
    assert production.cluster.highAvailability and not staging.cluster.highAvailability
    assert production.consul.serverCount >= 3 and staging.consul.serverCount == 1
    assert len(production.network.availability_zones) >= 3
    for group in production.nodeGroups:
        small = next(g for g in staging.nodeGroups if g.name == group.name)
        assert group.desiredCapacity > small.desiredCapacity


def _set(path: str, value: Any) -> Callable[[Raw], None]:
    """Mutation that sets `swarm-cluster:<key>.<a>.<0>.<b>` (list indexes as digits) to value."""

    def mutate(raw: Raw) -> None:
        key, *rest = path.split(".")
        full = key if ":" in key else f"swarm-cluster:{key}"
        if not rest:
            raw[full] = value
            return
        node = raw[full]
        for part in rest[:-1]:
            node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
        last = rest[-1]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return mutate


def _delete(path: str) -> Callable[[Raw], None]:
    def mutate(raw: Raw) -> None:
        key, *rest = path.split(".")
        node = raw[f"swarm-cluster:{key}"]
        for part in rest[:-1]:
            node = node[int(part)] if part.isdigit() else node[part]
        del node[rest[-1]]

    return mutate


def _both(first: Callable[[Raw], None], second: Callable[[Raw], None]) -> Callable[[Raw], None]:
    def mutate(raw: Raw) -> None:
        first(raw)
        second(raw)

    return mutate


INVALID = [
    # (stack, mutation, key path in the message, words of the reason)
    (
        "staging",
        _set("nodeGroups.1.minSize", 5),
        "swarm-cluster:nodeGroups[1].desiredCapacity",
        "minSize <= desiredCapacity <= maxSize",
    ),
    ("staging", _set("nodeGroups.2.maxSize", 0), "swarm-cluster:nodeGroups[2].maxSize", "greater than or equal to 1"),
    ("staging", _set("nodeGroups.1.name", "managers"), "swarm-cluster:nodeGroups[1].name", "used more than once"),
    ("staging", _set("nodeGroups.0.desiredCapacity", 2), "swarm-cluster:nodeGroups[0].desiredCapacity", "even"),
    ("staging", _set("nodeGroups.0.swarmManager", False), "swarm-cluster:nodeGroups", "no group has swarmManager"),
    (
        "staging",
        _set("nodeGroups.1.swarmManager", True),
        "swarm-cluster:nodeGroups[1].swarmManager",
        "only one Swarm manager group",
    ),
    (
        "staging",
        _set("nodeGroups.1.instanceType", "t3-medium"),
        "swarm-cluster:nodeGroups[1].instanceType",
        "EC2 instance type",
    ),
    (
        "staging",
        _set("nodeGroups.1.colour", "blue"),
        "swarm-cluster:nodeGroups[1].colour",
        "unknown key; allowed here: name, role",
    ),
    (
        "staging",
        _set("nodeGroups.1.labels", {"tier": "edge"}),
        "swarm-cluster:nodeGroups[1].labels.tier",
        "docker.* label key",
    ),
    (
        "staging",
        _set("nodeGroups.1.labels", {"docker.role": "x"}),
        "swarm-cluster:nodeGroups[1].labels.docker.role",
        "set from cluster.environment",
    ),
    (
        "staging",
        _set("nodeGroups.1.name", "consul-edge"),
        "swarm-cluster:nodeGroups[1].name",
        "clash with the cluster services",
    ),
    (
        "staging",
        _both(
            _set("cluster.environment", "staging-eu-west-blue-a"), _set("nodeGroups.1.name", "frontend-edge-tier-one")
        ),
        "swarm-cluster:nodeGroups[1].name",
        "longer than 63",
    ),
    (
        "staging",
        _set("nodeGroups.1.ingress.0.port", 2375),
        "swarm-cluster:nodeGroups[1].ingress[0].cidrs[0]",
        "cluster port",
    ),
    ("staging", _set("nodeGroups.2.minSize", "1"), "swarm-cluster:nodeGroups[2].minSize", "valid integer"),
    ("staging", _set("consul.serverCount", 2), "swarm-cluster:consul.serverCount", "odd count"),
    ("production", _set("consul.serverCount", 1), "swarm-cluster:consul.serverCount", "at least 3"),
    ("production", _set("nodeGroups.0.minSize", 1), "swarm-cluster:nodeGroups[0].maxSize", "fixed size"),
    (
        "production",
        _set("cluster.highAvailability", False),
        "swarm-cluster:cluster.highAvailability",
        "production must be highly available",
    ),
    (
        "production",
        lambda raw: raw["swarm-cluster:network"]["subnets"].pop(),
        "swarm-cluster:network.subnets",
        "at least 3",
    ),
    (
        "staging",
        lambda raw: raw["swarm-cluster:network"]["subnets"].pop(),
        "swarm-cluster:network.subnets",
        "at least 2 items",
    ),
    ("staging", _set("network.vpcCidr", "10.20.0.0/33"), "swarm-cluster:network.vpcCidr", "not a CIDR block"),
    (
        "staging",
        _set("network.subnets.0.cidr", "10.99.0.0/20"),
        "swarm-cluster:network.subnets[0].cidr",
        "not inside vpcCidr",
    ),
    (
        "staging",
        _set("network.subnets.1.id", "subnet-0aa11bb22cc33dd44"),
        "swarm-cluster:network.subnets[1].id",
        "used more than once",
    ),
    (
        "staging",
        _set("network.subnets.1.availabilityZone", "eu-west-1a"),
        "swarm-cluster:network.subnets[1].availabilityZone",
        "used more than once",
    ),
    ("staging", _set("cluster.environment", "internal-qa"), "swarm-cluster:cluster.environment", "avoid the prefixes"),
    (
        "staging",
        _set("nodeGroups.1.ingress.0.description", "world's HTTP"),
        "swarm-cluster:nodeGroups[1].ingress[0].description",
        "1-255 of letters, digits, spaces",
    ),
    (
        "staging",
        _set("network.subnets.0.availabilityZone", "west"),
        "swarm-cluster:network.subnets[0].availabilityZone",
        "availability zone",
    ),
    ("staging", _set("rancheros.amiId", "ami-123"), "swarm-cluster:rancheros.amiId", "AMI id"),
    (
        "staging",
        _set("rancheros.kmsKeyArn", "arn:aws:kms:eu-west-1:123456789012:alias/x"),
        "swarm-cluster:rancheros.kmsKeyArn",
        "KMS key ARN",
    ),
    ("staging", _set("access.adminCidrs", ["0.0.0.0/0"]), "swarm-cluster:access.adminCidrs[0]", "whole internet"),
    (
        "staging",
        _set("access.sshAuthorizedKeys", ["hunter2"]),
        "swarm-cluster:access.sshAuthorizedKeys[0]",
        "OpenSSH public key",
    ),
    ("staging", _set("tags", {"aws:owner": "me"}), "swarm-cluster:tags.aws:owner", "reserved 'aws:' prefix"),
    ("staging", _set("tags", {"k" * 128: "v"}), f"swarm-cluster:tags.{'k' * 57}...", "1 to 127"),
    ("staging", _set("tags", {"Owner": "v" * 257}), "swarm-cluster:tags.Owner", "at most 256"),
    ("staging", _set("tags", {"team/name": "ops"}), "swarm-cluster:tags.team/name", "character AWS refuses"),
    ("staging", _set("tags", {"Name": "x"}), "swarm-cluster:tags.Name", "set by the program"),
    ("staging", _set("tags", {f"Tag{i}": "v" for i in range(45)}), "swarm-cluster:nodeGroups[1].labels", "at most 50"),
    (
        "staging",
        _set("tagVariables.1.variable", "DB_HOST"),
        "swarm-cluster:tagVariables[1].variable",
        "used more than once",
    ),
    (
        "staging",
        _set("tagVariables.0.variable", "db-host"),
        "swarm-cluster:tagVariables[0].variable",
        "environment variable name",
    ),
    ("staging", _set("registry.replicas", 2), "swarm-cluster:registry.replicas", "registryHttpSecret"),
    ("staging", _set("registry.image", "registry:latest"), "swarm-cluster:registry.image", "not pinned"),
    ("staging", _set("swarm.image", "swarm"), "swarm-cluster:swarm.image", "image reference with a tag"),
    ("staging", _delete("registry.bucketName"), "swarm-cluster:registry.bucketName", "missing; this key is required"),
    ("staging", _set("dns.internalZone", "Example_Internal"), "swarm-cluster:dns.internalZone", "DNS domain"),
    ("staging", _set("aws:region", "Europe"), "aws:region", "AWS region"),
    ("staging", _set("nodeGroup", []), "swarm-cluster:nodeGroup", "unknown key; the swarm-cluster keys are"),
    ("staging", _set("dns", "staging.example.internal"), "swarm-cluster:dns", "expected a YAML object"),
]


@pytest.mark.parametrize(("stack", "mutate", "path", "reason"), INVALID)
def test_invalid_config_names_key_and_reason(stack: str, mutate: Callable[[Raw], None], path: str, reason: str) -> None:
    problems = _problems(stack, mutate)
    assert all(PROBLEM_LINE.fullmatch(p) for p in problems), problems
    prefix = f"Pulumi.{stack}.yaml: {path}: "
    matching = [p for p in problems if p.startswith(prefix)]
    assert matching, f"no problem for {path}; got: {problems}"
    assert any(reason in p for p in matching), f"{reason!r} not in {matching}"


def test_every_problem_is_reported_at_once() -> None:
    def many(raw: Raw) -> None:
        _set("rancheros.amiId", "nope")(raw)
        _set("nodeGroups.1.instanceType", "big")(raw)
        _set("aws:region", "mars")(raw)
        _set("typo", {})(raw)

    problems = _problems("staging", many)
    assert len(problems) == 4, problems
    assert all(p.startswith("Pulumi.staging.yaml: ") for p in problems)


def test_defaults_are_safe() -> None:
    raw = _raw("staging")
    del raw["swarm-cluster:access"]
    config = _load("staging", raw)
    assert config.access.adminCidrs == [] and config.access.sshCidrs == [] and config.access.sshAuthorizedKeys == []
    assert config.access.ssmSessionManager is False
    manager = next(g for g in config.nodeGroups if g.swarmManager)
    assert manager.scale_in_protected and not manager.autoscaled


GOSSIP = "swarm-cluster:consulGossipKey"


@pytest.mark.parametrize(
    "value",
    [
        "c2hvcnQ=",  # base64, but 5 bytes
        "not base64 at all!",
        "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWYwMTIzNDU2Nzg5YWJjZGVm",  # 48 bytes
    ],
)
def test_gossip_key_must_be_32_bytes_of_base64_and_is_never_quoted(value: str) -> None:
    problems = _problems("staging", _set(GOSSIP, value))
    assert problems == [
        f"Pulumi.staging.yaml: {GOSSIP}: is not base64 of 32 bytes; generate one with `openssl rand -base64 32` "
        "or `consul keygen`"
    ]
    assert all(value not in line for line in problems)


def test_gossip_key_is_required() -> None:
    [problem] = _problems("production", lambda raw: raw.pop(GOSSIP))
    assert problem == f"Pulumi.production.yaml: {GOSSIP}: missing; this key is required"
