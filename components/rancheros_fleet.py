"""RancherOSFleet: stateless RancherOS hosts in an autoscaling group, configured only by user-data and tags.

Shared by the Swarm node groups and the cluster services (Consul, registry): an IAM role and instance
profile, a launch template and an autoscaling group that rolls to every new template version.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from components.node_drain import DRAIN_WINDOW_TAG
from rendering.yaml_text import encode_user_data

# A RancherOS node boots, pulls its images and joins the cluster in well under five minutes.
WARMUP_SECONDS = 300
GROUP_METRICS = [
    aws.autoscaling.Metric.GROUP_MIN_SIZE,
    aws.autoscaling.Metric.GROUP_MAX_SIZE,
    aws.autoscaling.Metric.GROUP_DESIRED_CAPACITY,
    aws.autoscaling.Metric.GROUP_IN_SERVICE_INSTANCES,
    aws.autoscaling.Metric.GROUP_PENDING_INSTANCES,
    aws.autoscaling.Metric.GROUP_STANDBY_INSTANCES,
    aws.autoscaling.Metric.GROUP_TERMINATING_INSTANCES,
    aws.autoscaling.Metric.GROUP_TOTAL_INSTANCES,
]
# What Session Manager's agent needs and nothing more (AWS's AWSCloud9SSMInstanceProfile is exactly this).
# AmazonSSMManagedInstanceCore would also grant ssm:GetParameter on every parameter, the cluster's secrets
# included, to every host.
SESSION_MANAGER_STATEMENT = {
    "Sid": "SessionManager",
    "Effect": "Allow",
    "Action": [
        "ssm:UpdateInstanceInformation",
        "ssmmessages:CreateControlChannel",
        "ssmmessages:CreateDataChannel",
        "ssmmessages:OpenControlChannel",
        "ssmmessages:OpenDataChannel",
    ],
    "Resource": "*",
}
# Autoscaling groups propagate no tags to EBS volumes, so only the launch template can tag them. Only tags that
# never change without the group's identity changing go there: a tag edit must not version the template.
VOLUME_TAG_KEYS = ("Name", "docker.environment", "cluster.component")


@dataclass(frozen=True)
class FleetSize:
    minimum: int
    desired: int
    maximum: int


@dataclass(frozen=True)
class RootVolume:
    device_name: pulumi.Input[str]
    size_gb: int
    kms_key_arn: str | None = None


@dataclass(frozen=True)
class RancherOSFleetArgs:
    ami_id: str
    instance_type: str
    root_volume: RootVolume
    user_data: pulumi.Input[str]  # the #cloud-config text; encoded here
    security_group_ids: Sequence[pulumi.Input[str]]
    subnet_ids: Sequence[str]
    size: FleetSize
    instance_tags: Mapping[str, str]  # propagated to every instance by the group; Name included
    tags: Mapping[str, str]  # on the AWS resources themselves
    policy_statements: Sequence[Mapping[str, Any]] = ()
    ssm_session_manager: bool = False
    # Quorum members (Consul servers, Swarm managers) are replaced one at a time, new before old.
    quorum: bool = False
    min_healthy_percentage: int = 90
    protect_from_scale_in: bool = False
    target_group_arns: Sequence[pulumi.Input[str]] = field(default_factory=list)
    # Scaling policies own the desired capacity: an update must never reset it to the configured start size.
    autoscaled: bool = False
    # Set for groups whose nodes drain on termination (components.node_drain): replacements launch first
    # so drained containers have somewhere to go, and the window is tagged for the deploy's refresh wait.
    drain_window_seconds: int | None = None


class RancherOSFleet(pulumi.ComponentResource):
    autoscaling_group_name: pulumi.Output[str]
    launch_template_id: pulumi.Output[str]
    launch_template_version: pulumi.Output[int]
    role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: RancherOSFleetArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("swarmcluster:hosts:RancherOSFleet", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        role = self._role(name, args, child)
        profile = aws.iam.InstanceProfile(
            f"{name}-profile", aws.iam.InstanceProfileArgs(name=name, role=role.name, tags=dict(args.tags)), child
        )
        template = self._launch_template(name, args, profile, child)
        group = self._autoscaling_group(name, args, template, child)
        self.autoscaling_group_name = group.name
        self.launch_template_id = template.id
        self.launch_template_version = template.latest_version
        self.role_arn = role.arn
        self.register_outputs(
            {
                "autoscalingGroupName": group.name,
                "launchTemplateId": template.id,
                "launchTemplateVersion": template.latest_version,
                "roleArn": role.arn,
            }
        )

    def _role(self, name: str, args: RancherOSFleetArgs, child: pulumi.ResourceOptions) -> aws.iam.Role:
        assume = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
            ],
        }
        role = aws.iam.Role(
            f"{name}-role",
            aws.iam.RoleArgs(
                name=name,
                description=f"RancherOS hosts of {name}: only what they need",
                assume_role_policy=json.dumps(assume),
                tags=dict(args.tags),
            ),
            child,
        )
        statements = [*args.policy_statements, *([SESSION_MANAGER_STATEMENT] if args.ssm_session_manager else [])]
        if statements:
            document = {"Version": "2012-10-17", "Statement": statements}
            aws.iam.RolePolicy(
                f"{name}-policy",
                aws.iam.RolePolicyArgs(name=name, role=role.name, policy=pulumi.Output.json_dumps(document)),
                child,
            )
        return role

    def _launch_template(
        self,
        name: str,
        args: RancherOSFleetArgs,
        profile: aws.iam.InstanceProfile,
        child: pulumi.ResourceOptions,
    ) -> aws.ec2.LaunchTemplate:
        volume = args.root_volume
        return aws.ec2.LaunchTemplate(
            f"{name}-lt",
            aws.ec2.LaunchTemplateArgs(
                name=name,
                description=f"RancherOS hosts of {name}",
                image_id=args.ami_id,
                instance_type=args.instance_type,
                iam_instance_profile=aws.ec2.LaunchTemplateIamInstanceProfileArgs(arn=profile.arn),
                vpc_security_group_ids=list(args.security_group_ids),
                user_data=pulumi.Output.from_input(args.user_data).apply(encode_user_data),
                # RancherOS fetches user-data with plain IMDSv1 GETs, so tokens cannot be required; the
                # user-data blocks application containers from the endpoint instead.
                metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                    http_endpoint="enabled",
                    http_tokens="optional",
                    http_put_response_hop_limit=1,
                    instance_metadata_tags="enabled",
                ),
                block_device_mappings=[
                    aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                        device_name=volume.device_name,
                        ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                            volume_size=volume.size_gb,
                            volume_type="gp3",
                            encrypted="true",
                            kms_key_id=volume.kms_key_arn,
                            delete_on_termination="true",
                        ),
                    )
                ],
                monitoring=aws.ec2.LaunchTemplateMonitoringArgs(enabled=True),
                # node-health powers a node off when it cannot become healthy: the group then replaces it.
                instance_initiated_shutdown_behavior="terminate",
                # Instances get their tags from the group (changed in place, no new version, no refresh).
                tag_specifications=[
                    aws.ec2.LaunchTemplateTagSpecificationArgs(
                        resource_type="volume",
                        tags={key: args.instance_tags[key] for key in VOLUME_TAG_KEYS if key in args.instance_tags},
                    )
                ],
                update_default_version=True,
                tags=dict(args.tags),
            ),
            child,
        )

    def _autoscaling_group(
        self,
        name: str,
        args: RancherOSFleetArgs,
        template: aws.ec2.LaunchTemplate,
        child: pulumi.ResourceOptions,
    ) -> aws.autoscaling.Group:
        return aws.autoscaling.Group(
            f"{name}-asg",
            aws.autoscaling.GroupArgs(
                name=name,
                vpc_zone_identifiers=list(args.subnet_ids),
                min_size=args.size.minimum,
                desired_capacity=args.size.desired,
                max_size=args.size.maximum,
                # The version number, never "$Latest": instance refresh only starts on a concrete change.
                launch_template=aws.autoscaling.GroupLaunchTemplateArgs(
                    id=template.id, version=template.latest_version.apply(str)
                ),
                # Instances are replaced when EC2 says they are broken; load balancers only route around
                # unhealthy targets, so a failing dependency (S3, Consul quorum) cannot cause a replacement loop.
                health_check_type="EC2",
                health_check_grace_period=WARMUP_SECONDS,
                default_instance_warmup=WARMUP_SECONDS,
                enabled_metrics=GROUP_METRICS,
                metrics_granularity="1Minute",
                termination_policies=["OldestLaunchTemplate", "OldestInstance"],
                protect_from_scale_in=args.protect_from_scale_in,
                target_group_arns=list(args.target_group_arns),
                instance_refresh=_instance_refresh(args),
                instance_maintenance_policy=_maintenance_policy(args),
                tags=[
                    aws.autoscaling.GroupTagArgs(key=key, value=value, propagate_at_launch=True)
                    for key, value in sorted(args.instance_tags.items())
                ]
                + _drain_tags(args),
                wait_for_capacity_timeout="15m",
            ),
            pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(ignore_changes=["desiredCapacity"] if args.autoscaled else None)
            ),
        )


def _instance_refresh(args: RancherOSFleetArgs) -> aws.autoscaling.GroupInstanceRefreshArgs:
    low, high = _healthy_percentages(args)
    return aws.autoscaling.GroupInstanceRefreshArgs(
        strategy="Rolling",
        preferences=aws.autoscaling.GroupInstanceRefreshPreferencesArgs(
            min_healthy_percentage=low,
            max_healthy_percentage=high,
            instance_warmup=str(WARMUP_SECONDS),
            skip_matching=True,
            # The provider points the group at the new version before the refresh starts, so a rollback
            # would relaunch the same failing version (terraform-provider-aws#34189).
            auto_rollback=False,
            # Protected instances (managers by default) must still roll to the new template.
            scale_in_protected_instances="Refresh",
        ),
    )


def _maintenance_policy(args: RancherOSFleetArgs) -> aws.autoscaling.GroupInstanceMaintenancePolicyArgs | None:
    """Replacements outside a refresh (failed health checks, rebalancing) drain the same way."""
    if args.drain_window_seconds is None:
        return None
    low, high = _healthy_percentages(args)
    return aws.autoscaling.GroupInstanceMaintenancePolicyArgs(min_healthy_percentage=low, max_healthy_percentage=high)


def _healthy_percentages(args: RancherOSFleetArgs) -> tuple[int, int]:
    if args.quorum and args.size.desired == 1:
        # A lone Consul server or manager that launched a successor first would let it bootstrap a second,
        # separate cluster: stop the old one first and accept the short outage.
        return 0, 100
    if args.quorum:
        return 100, 110  # one instance at a time, the new one in service before the old one stops
    low = args.min_healthy_percentage
    if low == 100:
        return 100, 200  # keeping every instance in service means launching replacements first
    if args.drain_window_seconds is not None:
        # Launch before terminating, in batches of about the share allowed out of service. AWS caps the
        # spread at 100 points, so minHealthyPercentage 0 cannot launch first and terminates first.
        return low, min(200, low + 100, 100 + max(10, 100 - low))
    return low, 100


def _drain_tags(args: RancherOSFleetArgs) -> list[aws.autoscaling.GroupTagArgs]:
    if args.drain_window_seconds is None:
        return []
    # On the group only: instances read their window from user-data, and a tag change must not roll them.
    return [
        aws.autoscaling.GroupTagArgs(
            key=DRAIN_WINDOW_TAG, value=str(args.drain_window_seconds), propagate_at_launch=False
        )
    ]
