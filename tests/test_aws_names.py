"""Every AWS name the program builds fits its limit, for any environment and group names validation accepts;
instance types: only the table's, with the right root disk."""

from __future__ import annotations

import json
import re

import pulumi_aws as aws
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from offline.harness import StackRun, run_stack
from offline.stack_files import stack_config_map
from stack_config.aws_names import NAME_LIMITS, fit_name
from stack_config.instance_types import FAMILIES, instance_type_problem, root_disk
from stack_config.rules import HOSTNAME_BUDGET, RESERVED_GROUP_PREFIXES

# `name` of these is a DNS name, checked by the config's own rules, not an AWS resource name.
DNS_NAMED = ("aws:route53/record:Record", "aws:route53/zone:Zone")
ELB_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?")

_names = st.from_regex(r"[a-z][a-z0-9-]{0,20}[a-z0-9]", fullmatch=True).filter(
    lambda n: not n.startswith(("internal", "sg-"))
)


def _longest_config(environment: str, port: int) -> dict[str, str]:
    """Staging with the given environment, registry port and every group name as long as the rules allow."""
    values, _ = stack_config_map("staging")
    cluster = json.loads(values["swarm-cluster:cluster"])
    values["swarm-cluster:cluster"] = json.dumps({**cluster, "environment": environment})
    registry = json.loads(values["swarm-cluster:registry"])
    values["swarm-cluster:registry"] = json.dumps({**registry, "port": port})
    groups = json.loads(values["swarm-cluster:nodeGroups"])
    room = min(22, HOSTNAME_BUDGET - len(environment))
    for i, group in enumerate(groups):
        name = f"g{i}{'x' * 22}"[:room].rstrip("-")
        assert not name.startswith(RESERVED_GROUP_PREFIXES)
        group["name"] = name
    values["swarm-cluster:nodeGroups"] = json.dumps(groups)
    return values


def _named(run: StackRun) -> list[tuple[str, str]]:
    return [
        (r.type, r.inputs["name"])
        for r in run.resources
        if r.custom and r.type.startswith("aws:") and "name" in r.inputs and r.type not in DNS_NAMED
    ]


# A name grows only with the environment's length and the port's digits (group names are always as long as the
# rules allow): the explicit example is the longest of both, so every name that must be shortened is; the
# generated examples vary the characters and lengths below it. Each example is a whole program run: 3 of them,
# not 6, since a mutation of `fit_name` that lets a name past its limit fails the explicit example alone.
@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(environment="e" * 22, port=65535)
@given(environment=_names, port=st.sampled_from([80, 5000, 65535]))
def test_every_aws_name_fits_its_limit(environment: str, port: int) -> None:
    run = run_stack("staging", config=_longest_config(environment, port), secret_keys=stack_config_map("staging")[1])
    named = _named(run)
    assert named
    for type_token, name in named:
        assert type_token in NAME_LIMITS, f"{type_token} is named by the program; add its AWS limit to NAME_LIMITS"
        assert len(name) <= NAME_LIMITS[type_token], (type_token, name)
        if type_token.startswith("aws:lb/"):
            assert ELB_NAME.fullmatch(name), name


def test_the_longest_names_are_shortened_deterministically_and_stay_distinct() -> None:
    environment = "a" * 22
    first = fit_name(f"{environment}-registry-5000", "aws:lb/targetGroup:TargetGroup")
    assert first == fit_name(f"{environment}-registry-5000", "aws:lb/targetGroup:TargetGroup")
    assert len(first) <= 32 and first.startswith(f"{environment}-")
    assert first != fit_name(f"{environment}-registry-5001", "aws:lb/targetGroup:TargetGroup")
    assert fit_name("staging-registry-5000", "aws:lb/targetGroup:TargetGroup") == "staging-registry-5000"


def test_every_table_entry_is_a_real_instance_type() -> None:
    known = {member.value for member in aws.ec2.InstanceType}
    for family, spec in FAMILIES.items():
        for size in spec.sizes:
            assert f"{family}.{size}" in known, f"{family}.{size}"
            assert instance_type_problem(f"{family}.{size}") is None


@pytest.mark.parametrize(
    ("instance_type", "disk"),
    [
        ("m6i.large", "/dev/nvme0n1"),
        ("c6i.xlarge", "/dev/nvme0n1"),
        ("t3.small", "/dev/nvme0n1"),
        ("t2.medium", "/dev/xvda"),
    ],
)
def test_root_disk_follows_the_platform(instance_type: str, disk: str) -> None:
    assert root_disk(instance_type) == disk


@pytest.mark.parametrize(
    ("instance_type", "why"),
    [
        ("t4g.small", "not one RancherOS"),  # Graviton: arm64, the AMI is x86_64
        ("m7g.large", "not one RancherOS"),
        ("mac2.metal", "not one RancherOS"),
        ("m7i.large", "not one RancherOS"),
        ("m5.metal", "bare metal"),
        ("t3.nano", "512 MiB"),
        ("m6i.medium", "does not exist"),
        ("c5.8xlarge", "does not exist"),
    ],
)
def test_types_nodes_cannot_run_on_are_refused(instance_type: str, why: str) -> None:
    problem = instance_type_problem(instance_type)
    assert problem is not None and why in problem
