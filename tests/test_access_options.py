"""Whole program with the optional access settings switched on: SSH, SSM, an existing zone, secrets."""

from __future__ import annotations

import json
from functools import cache

from offline.harness import StackRun, run_stack
from offline.stack_files import stack_config_map
from rendering.yaml_text import decode_user_data
from tests.cloud_config_checks import parsed

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx0ZXN0a2V5Zm9ydGhlcmVuZGVyZXJ0ZXN0cw== ops@example"
ZONE = "Z0123456789ABCDEFGHIJ"
SSH_CIDR = "10.8.12.0/24"


@cache
def opened_up() -> StackRun:
    values, secrets = stack_config_map("staging")
    access = json.loads(values["swarm-cluster:access"])
    access.update(sshCidrs=[SSH_CIDR], sshAuthorizedKeys=[KEY], ssmSessionManager=True)
    values["swarm-cluster:access"] = json.dumps(access)
    dns = json.loads(values["swarm-cluster:dns"])
    values["swarm-cluster:dns"] = json.dumps({**dns, "existingZoneId": ZONE})
    return run_stack("staging", config=values, secret_keys=secrets)


def test_ssh_only_from_the_configured_ranges_on_every_host() -> None:
    run = opened_up()
    rules = [r.inputs for r in run.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")]
    ssh = [r for r in rules if r["fromPort"] == 22]
    assert {r.get("cidrIpv4") for r in ssh} == {SSH_CIDR}
    # Every host's own group: the node groups', Consul's and the registry's; not load balancers', not the
    # cluster-wide node group (each node group opens SSH on its own).
    groups = run.of_type("aws:ec2/securityGroup:SecurityGroup")
    host_groups = {g.id for g in groups if not g.inputs["name"].endswith("-lb") and g.inputs["name"] != "staging-nodes"}
    assert {r["securityGroupId"] for r in ssh} == host_groups, "each host's own security group, nothing else"


def test_keys_are_installed_on_every_host() -> None:
    for template in opened_up().of_type("aws:ec2/launchTemplate:LaunchTemplate"):
        user_data = parsed(decode_user_data(template.inputs["userData"]))
        assert user_data["ssh_authorized_keys"] == [KEY], template.name


def test_ssm_grants_every_role_the_session_manager_actions_and_no_parameter() -> None:
    run = opened_up()
    roles = {r.outputs["name"] for r in run.of_type("aws:iam/role:Role")}
    assert run.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment") == [], "no managed policy"
    policies = {p.inputs["role"]: json.loads(p.inputs["policy"]) for p in run.of_type("aws:iam/rolePolicy:RolePolicy")}
    assert set(policies) == roles
    session = {
        "ssm:UpdateInstanceInformation",
        "ssmmessages:CreateControlChannel",
        "ssmmessages:CreateDataChannel",
        "ssmmessages:OpenControlChannel",
        "ssmmessages:OpenDataChannel",
    }
    for role, policy in policies.items():
        [statement] = [s for s in policy["Statement"] if s.get("Sid") == "SessionManager"]
        assert (set(statement["Action"]), statement["Resource"]) == (session, "*"), role
        wildcard = [s["Action"] for s in policy["Statement"] if s["Resource"] == "*" and s is not statement]
        assert not any("ssm:Get" in str(actions) for actions in wildcard), role


def test_existing_zone_is_used_and_none_is_created() -> None:
    run = opened_up()
    assert run.of_type("aws:route53/zone:Zone") == []
    records = run.of_type("aws:route53/record:Record")
    assert len(records) == 3 and {r.inputs["zoneId"] for r in records} == {ZONE}
    assert run.exports["internalZoneId"] == ZONE
