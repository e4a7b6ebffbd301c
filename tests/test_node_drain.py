"""The AWS side of draining: every Swarm node group's termination hook and the window the deploy waits."""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile

import pytest

from components.node_drain import DRAIN_WINDOW_TAG, HEARTBEAT_TIMEOUT_SECONDS
from components.rancheros_fleet import FleetSize, RancherOSFleetArgs, RootVolume, _healthy_percentages
from node_agents.drain import HEARTBEAT_INTERVAL
from rendering.yaml_text import decode_user_data
from tests.cloud_config_checks import parsed
from tests.conftest import recorded
from tests.test_swarm_node_groups import _group, cases, config


@pytest.mark.parametrize(("stack", "name"), cases())
def test_every_swarm_group_holds_terminating_nodes_for_their_drain(stack: str, name: str) -> None:
    run = recorded(stack)
    hook = run.named("aws:autoscaling/lifecycleHook:LifecycleHook", f"{stack}-{name}-drain")
    assert hook.parent == run.named("swarmcluster:nodes:SwarmNodeGroup", f"{stack}-{name}").urn
    assert hook.inputs == {
        "name": f"{stack}-{name}-drain",
        "autoscalingGroupName": f"{stack}-{name}",
        "lifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
        "heartbeatTimeout": HEARTBEAT_TIMEOUT_SECONDS,
        "defaultResult": "CONTINUE",
    }


@pytest.mark.parametrize(("stack", "name"), cases())
def test_the_group_tells_the_deploy_its_drain_window(stack: str, name: str) -> None:
    asg = recorded(stack).named("aws:autoscaling/group:Group", f"{stack}-{name}-asg").inputs
    [tag] = [t for t in asg["tags"] if t["key"] == DRAIN_WINDOW_TAG]
    assert tag == {
        "key": DRAIN_WINDOW_TAG,
        "value": str(_group(stack, name).drainWindowSeconds),
        "propagateAtLaunch": False,
    }


def test_heartbeats_come_several_times_per_timeout() -> None:
    assert HEARTBEAT_TIMEOUT_SECONDS >= 3 * HEARTBEAT_INTERVAL


def _args(low: int, desired: int = 4, quorum: bool = False) -> RancherOSFleetArgs:
    return RancherOSFleetArgs(
        ami_id="ami-0123456789abcdef0",
        instance_type="t3.small",
        root_volume=RootVolume("/dev/sda1", 20),
        user_data="#cloud-config\n",
        security_group_ids=[],
        subnet_ids=[],
        size=FleetSize(1, desired, 6),
        instance_tags={},
        tags={},
        quorum=quorum,
        min_healthy_percentage=low,
        drain_window_seconds=300,
    )


@pytest.mark.parametrize("low", [1, 10, 50, 89, 90, 99, 100])
def test_drained_groups_launch_replacements_first_within_what_aws_accepts(low: int) -> None:
    got_low, high = _healthy_percentages(_args(low))
    assert got_low == low and 100 < high <= 200 and high - low <= 100


def test_min_healthy_zero_cannot_launch_first() -> None:
    assert _healthy_percentages(_args(0)) == (0, 100)


def test_quorum_groups_still_roll_one_at_a_time() -> None:
    assert _healthy_percentages(_args(90, desired=3, quorum=True)) == (100, 110)


@pytest.mark.parametrize(("stack", "name"), cases())
def test_every_node_fetches_exactly_the_stored_agents_archive(stack: str, name: str) -> None:
    run, cfg = recorded(stack), config(stack)
    stored = run.named("aws:s3/bucketObjectv2:BucketObjectv2", f"{stack}-cluster-node-agents-object").inputs
    content = base64.b64decode(stored["contentBase64"])
    digest = hashlib.sha256(content).hexdigest()
    assert stored["key"] == f"node-agents/{digest}.zip" and stored["bucket"] == cfg.registry.bucketName
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        assert "node_agents/drain.py" in archive.namelist()
    template = run.named("aws:ec2/launchTemplate:LaunchTemplate", f"{stack}-{name}-lt").inputs
    document = parsed(decode_user_data(template["userData"]))
    environment = dict(e.split("=", 1) for e in document["rancher"]["services"]["drain"]["environment"])
    assert (
        environment["AGENTS_URL"] == f"https://{cfg.registry.bucketName}.s3.{cfg.region}.amazonaws.com/{stored['key']}"
    )
    assert environment["DRAIN_GROUP"] == f"{stack}-{name}"
    assert environment["DRAIN_HOOK"] == f"{stack}-{name}-drain"
    assert environment["DRAIN_WINDOW_SECONDS"] == str(_group(stack, name).drainWindowSeconds)
