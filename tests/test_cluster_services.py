"""Whole program, both stacks: internal DNS, Consul servers and the registry with its S3 bucket."""

from __future__ import annotations

import json

import pytest
import yaml

from offline.harness import RecordedResource, StackRun
from rendering.yaml_text import decode_user_data
from tests.cloud_config_checks import parsed
from tests.conftest import STACKS, recorded
from tests.test_swarm_node_groups import INGRESS, _sg_id, _sources, _tags, config

BUCKET = "aws:s3/bucket:Bucket"


def _companion(run: StackRun, type_: str, bucket: RecordedResource) -> dict[str, object]:
    [match] = [r for r in run.of_type(type_) if r.inputs["bucket"] == bucket.id]
    return match.inputs


def _policy(run: StackRun, name: str) -> dict[str, object]:
    document: dict[str, object] = json.loads(run.named("aws:iam/rolePolicy:RolePolicy", name).inputs["policy"])
    return document


def _user_data(run: StackRun, template: str) -> dict[str, object]:
    text = decode_user_data(run.named("aws:ec2/launchTemplate:LaunchTemplate", template).inputs["userData"])
    document: dict[str, object] = parsed(text)
    return document


@pytest.mark.parametrize("stack", STACKS)
def test_private_zone_and_both_records(stack: str) -> None:
    run, cfg = recorded(stack), config(stack)
    zone = run.named("aws:route53/zone:Zone", f"{stack}-cluster-zone")
    assert zone.inputs["name"] == cfg.dns.internalZone
    assert zone.inputs["vpcs"] == [{"vpcId": cfg.network.vpcId, "vpcRegion": cfg.region}]
    records = {r.inputs["name"]: r.inputs for r in run.of_type("aws:route53/record:Record")}
    for host in ("consul", "docker", "swarm"):
        record = records[f"{host}.{cfg.dns.internalZone}"]
        assert record["zoneId"] == zone.outputs["zoneId"]
        assert record["type"] == "A" and record["aliases"][0]["evaluateTargetHealth"] is True
    assert run.exports["consulEndpoint"] == f"consul.{cfg.dns.internalZone}:8500"
    assert run.exports["registryEndpoint"] == f"docker.{cfg.dns.internalZone}:{cfg.registry.port}"


@pytest.mark.parametrize("stack", STACKS)
def test_consul_servers(stack: str) -> None:
    run, cfg = recorded(stack), config(stack)
    asg = run.named("aws:autoscaling/group:Group", f"{stack}-cluster-consul-asg")
    count = cfg.consul.serverCount
    assert (asg.inputs["minSize"], asg.inputs["desiredCapacity"], asg.inputs["maxSize"]) == (count, count, count)
    assert asg.inputs["vpcZoneIdentifiers"] == [s.id for s in cfg.network.subnets]
    assert count % 2 == 1 and (count >= 3 or not cfg.cluster.highAvailability)
    preferences = asg.inputs["instanceRefresh"]["preferences"]
    # A lone server stops before its successor starts, or the successor would bootstrap a second cluster.
    one_at_a_time = (0, 100) if count == 1 else (100, 110)
    assert (preferences["minHealthyPercentage"], preferences["maxHealthyPercentage"]) == one_at_a_time
    assert preferences["autoRollback"] is False
    tags = _tags(asg)
    assert tags["cluster.component"] == "consul-server"
    assert tags["consul.cluster"] == stack


@pytest.mark.parametrize("stack", STACKS)
def test_consul_auto_join_matches_tags_and_permission(stack: str) -> None:
    run, cfg = recorded(stack), config(stack)
    consul_json = _consul_config(run, stack)
    assert consul_json["server"] is True
    assert consul_json["bootstrap_expect"] == cfg.consul.serverCount
    [join] = consul_json["retry_join"]
    assert f"tag_key=consul.cluster tag_value={stack}" in join and "provider=aws" in join
    assert f"region={cfg.region}" in join
    [statement] = [
        s
        for s in _policy(run, f"{stack}-cluster-consul-policy")["Statement"]  # type: ignore[attr-defined]
        if s["Sid"] == "ConsulCloudAutoJoin"
    ]
    assert statement["Action"] == "ec2:DescribeInstances" and statement["Effect"] == "Allow"
    assert statement["Condition"] == {"StringEquals": {"aws:RequestedRegion": cfg.region}}


@pytest.mark.parametrize("stack", STACKS)
def test_consul_turnover_and_gossip_settings(stack: str) -> None:
    consul_json, cfg = _consul_config(recorded(stack), stack), config(stack)
    assert consul_json["leave_on_terminate"] is True
    assert consul_json["autopilot"]["min_quorum"] == cfg.consul.serverCount  # type: ignore[index]
    full = cfg.consul.gossipEnforcement == "full"
    assert consul_json["encrypt_verify_incoming"] is full
    assert consul_json["encrypt_verify_outgoing"] is (cfg.consul.gossipEnforcement != "none")


def _consul_config(run: StackRun, stack: str) -> dict[str, object]:
    files = _user_data(run, f"{stack}-cluster-consul-lt")["write_files"]
    [entry] = [f for f in files if str(f["path"]).endswith(".json")]  # type: ignore[union-attr]
    document: dict[str, object] = json.loads(entry["content"])
    return document


@pytest.mark.parametrize("stack", STACKS)
def test_consul_security_groups(stack: str) -> None:
    run, cfg = recorded(stack), config(stack)
    consul, nodes, balancer = (_sg_id(run, f"{stack}-{n}") for n in ("consul", "nodes", "consul-lb"))
    rules = [r.inputs for r in run.of_type(INGRESS) if r.inputs["securityGroupId"] == consul]
    gossip = {(r["ipProtocol"], r["fromPort"]) for r in rules if r["referencedSecurityGroupId"] == consul}
    assert gossip == {("tcp", 8300), ("tcp", 8301), ("udp", 8301), ("tcp", 8302), ("udp", 8302)}
    http = [r for r in rules if r["fromPort"] == 8500]
    assert [r["referencedSecurityGroupId"] for r in http] == [balancer]
    clients = [r.inputs for r in run.of_type(INGRESS) if r.inputs["securityGroupId"] == balancer]
    assert _sources(clients) == {*cfg.access.adminCidrs, *cfg.access.adminSecurityGroupIds, nodes}


@pytest.mark.parametrize("stack", STACKS)
def test_registry_hosts(stack: str) -> None:
    run, cfg = recorded(stack), config(stack)
    asg = run.named("aws:autoscaling/group:Group", f"{stack}-cluster-registry-asg").inputs
    replicas = cfg.registry.replicas
    assert (asg["minSize"], asg["desiredCapacity"], asg["maxSize"]) == (replicas, replicas, replicas)
    assert asg["healthCheckType"] == "EC2", "an S3 outage must not make the group replace its hosts"
    target_group = run.named("aws:lb/targetGroup:TargetGroup", f"{stack}-cluster-registry-endpoint-tg")
    assert target_group.inputs["healthCheck"]["path"] == "/v2/"
    assert asg["targetGroupArns"] == [target_group.outputs["arn"]]
    registry, nodes, balancer = (_sg_id(run, f"{stack}-{n}") for n in ("registry", "nodes", "registry-lb"))
    into_hosts = [r.inputs for r in run.of_type(INGRESS) if r.inputs["securityGroupId"] == registry]
    assert [(r["fromPort"], r["referencedSecurityGroupId"]) for r in into_hosts] == [(cfg.registry.port, balancer)]
    clients = [r.inputs for r in run.of_type(INGRESS) if r.inputs["securityGroupId"] == balancer]
    assert _sources(clients) == {*cfg.access.adminCidrs, *cfg.access.adminSecurityGroupIds, nodes}


@pytest.mark.parametrize("stack", STACKS)
def test_registry_config_points_at_the_bucket(stack: str) -> None:
    run, cfg = recorded(stack), config(stack)
    files = _user_data(run, f"{stack}-cluster-registry-lt")["write_files"]
    [entry] = [f for f in files if str(f["path"]).endswith("config.yml")]  # type: ignore[union-attr]
    registry = yaml.safe_load(entry["content"])
    s3 = registry["storage"]["s3"]
    assert (s3["bucket"], s3["region"]) == (cfg.registry.bucketName, cfg.region)
    assert not {"accesskey", "secretkey"} & set(s3), "credentials come from the instance role"
    assert "secret" not in registry["http"], "REGISTRY_HTTP_SECRET, from SSM (tests/test_host_secrets.py)"
    # The driver's own encryption header would override the bucket's KMS default without the key.
    assert s3["encrypt"] is True and s3.get("keyid") == cfg.rancheros.kmsKeyArn
    assert s3["objectacl"] == "bucket-owner-full-control"


@pytest.mark.parametrize("stack", STACKS)
def test_bucket_protections(stack: str) -> None:
    run, cfg = recorded(stack), config(stack)
    bucket = run.named(BUCKET, f"{stack}-cluster-registry-bucket")
    assert bucket.inputs["bucket"] == cfg.registry.bucketName and bucket.inputs["forceDestroy"] is False
    block = _companion(run, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", bucket)
    assert all(
        block[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    )
    encryption = _companion(
        run, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", bucket
    )
    [rule] = encryption["rules"]  # type: ignore[misc]
    by_default = rule["applyServerSideEncryptionByDefault"]
    key = cfg.rancheros.kmsKeyArn
    assert by_default["sseAlgorithm"] == ("aws:kms" if key else "AES256")
    assert by_default.get("kmsMasterKeyId") == key
    versioning = _companion(run, "aws:s3/bucketVersioning:BucketVersioning", bucket)
    assert versioning["versioningConfiguration"] == {"status": "Enabled"}
    policy = json.loads(str(_companion(run, "aws:s3/bucketPolicy:BucketPolicy", bucket)["policy"]))
    [deny] = policy["Statement"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert set(deny["Resource"]) == {bucket.outputs["arn"], bucket.outputs["arn"] + "/*"}


def test_bucket_is_protected_in_production_only() -> None:
    production = recorded("production").named(BUCKET, "production-cluster-registry-bucket")
    staging = recorded("staging").named(BUCKET, "staging-cluster-registry-bucket")
    assert production.protect and production.retain_on_delete
    assert not staging.protect and not staging.retain_on_delete


@pytest.mark.parametrize("stack", STACKS)
def test_registry_role_touches_only_its_bucket(stack: str) -> None:
    run = recorded(stack)
    arn = run.named(BUCKET, f"{stack}-cluster-registry-bucket").outputs["arn"]
    statements = _policy(run, f"{stack}-cluster-registry-policy")["Statement"]
    s3 = [s for s in statements if any(a.startswith("s3:") for a in s["Action"])]  # type: ignore[union-attr]
    # Objects only under the registry's root: Consul snapshots (the whole KV store) are not its to read.
    assert {s["Resource"] for s in s3} == {arn, f"{arn}/docker/*"}
    assert all(not a.endswith("*") for s in statements for a in s["Action"])  # type: ignore[union-attr]
    kms = [s for s in statements if s["Sid"] == "RegistryBucketKey"]  # type: ignore[index]
    assert [s["Resource"] for s in kms] == (
        [config(stack).rancheros.kmsKeyArn] if config(stack).rancheros.kmsKeyArn else []
    )


@pytest.mark.parametrize("stack", STACKS)
def test_consul_role_puts_and_gets_snapshots_under_its_prefix_only(stack: str) -> None:
    run, cfg = recorded(stack), config(stack)
    arn = run.named(BUCKET, f"{stack}-cluster-registry-bucket").outputs["arn"]
    statements = {s["Sid"]: s for s in _policy(run, f"{stack}-cluster-consul-policy")["Statement"]}  # type: ignore[attr-defined]
    listing, objects = statements["ConsulSnapshotList"], statements["ConsulSnapshotObjects"]
    assert (listing["Action"], listing["Resource"]) == ("s3:ListBucket", arn)
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["consul-snapshots/*"]}}
    assert (objects["Action"], objects["Resource"]) == (["s3:GetObject", "s3:PutObject"], f"{arn}/consul-snapshots/*")
    key = cfg.rancheros.kmsKeyArn
    assert ("ConsulSnapshotKey" in statements) == bool(key)
    if key:
        assert statements["ConsulSnapshotKey"]["Resource"] == key
    assert not any("s3:DeleteObject" in str(s["Action"]) for s in statements.values()), "lifecycle rules delete"


@pytest.mark.parametrize("stack", STACKS)
def test_consul_servers_fetch_the_stored_agents_archive_and_may_read_only_that_object(stack: str) -> None:
    run, cfg = recorded(stack), config(stack)
    arn = run.named(BUCKET, f"{stack}-cluster-registry-bucket").outputs["arn"]
    key = run.named("aws:s3/bucketObjectv2:BucketObjectv2", f"{stack}-cluster-node-agents-object").inputs["key"]
    service = _user_data(run, f"{stack}-cluster-consul-lt")["rancher"]["services"]["consul-snapshot"]  # type: ignore[index]
    url = f"https://{cfg.registry.bucketName}.s3.{cfg.region}.amazonaws.com/{key}"
    assert f"AGENTS_URL={url}" in service["environment"]
    statements = {s["Sid"]: s for s in _policy(run, f"{stack}-cluster-consul-policy")["Statement"]}  # type: ignore[attr-defined]
    fetch = statements["FetchNodeAgents"]
    assert (fetch["Action"], fetch["Resource"]) == ("s3:GetObject", f"{arn}/{key}")


@pytest.mark.parametrize("stack", STACKS)
def test_snapshots_expire_after_the_retention(stack: str) -> None:
    run, cfg = recorded(stack), config(stack)
    bucket = run.named(BUCKET, f"{stack}-cluster-registry-bucket")
    rules = {
        r["id"]: r
        for r in _companion(run, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", bucket)["rules"]
    }  # type: ignore[attr-defined]
    days = cfg.consul.snapshots.retentionDays
    expire = rules["expire-consul-snapshots"]
    assert expire["filter"] == {"prefix": "consul-snapshots/"} and expire["status"] == "Enabled"
    assert expire["expiration"] == {"days": days}
    assert expire["noncurrentVersionExpiration"] == {"noncurrentDays": days}
    markers = rules["remove-consul-snapshot-delete-markers"]
    assert markers["filter"] == {"prefix": "consul-snapshots/"}
    assert markers["expiration"] == {"expiredObjectDeleteMarker": True}
    assert rules["abort-incomplete-uploads"]["filter"] == {"prefix": ""}, "the registry's rule is unchanged"


@pytest.mark.parametrize("stack", STACKS)
def test_consul_user_data_names_the_bucket_and_interval(stack: str) -> None:
    run, cfg = recorded(stack), config(stack)
    agent = _user_data(run, f"{stack}-cluster-consul-lt")["rancher"]["services"]["consul-snapshot"]  # type: ignore[index]
    command = agent["command"]
    assert command[command.index("--bucket") + 1] == cfg.registry.bucketName
    assert command[command.index("--interval") + 1] == str(cfg.consul.snapshots.intervalMinutes * 60)


@pytest.mark.parametrize("stack", STACKS)
def test_node_groups_consume_service_endpoints(stack: str) -> None:
    run, cfg = recorded(stack), config(stack)
    for group in cfg.nodeGroups:
        text = str(_user_data(run, f"{stack}-{group.name}-lt"))
        assert f"consul.{cfg.dns.internalZone}:8500" in text
        assert f"docker.{cfg.dns.internalZone}:{cfg.registry.port}" in text
