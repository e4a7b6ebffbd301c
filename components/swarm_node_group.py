"""SwarmNodeGroup: one group of stateless RancherOS Swarm nodes that configure themselves from user-data.

Launch template, tagged autoscaling group, CPU target tracking, the group's security group and IAM role;
the manager group also gets the stable `swarm.<zone>:4000` endpoint and the right to reach every engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.cluster_context import ClusterContext
from components.internal_endpoint import InternalEndpoint, InternalEndpointArgs
from components.node_agents_archive import NodeAgentsArchive
from components.node_drain import hook_name, lifecycle_statement, termination_hook
from components.rancheros_fleet import FleetSize, RancherOSFleet, RancherOSFleetArgs
from components.security_rules import SSH_PORT, allow
from components.user_data import rendered
from node_agents import capacity
from rendering.drain_agent import DrainSpec
from rendering.primary_agent import MeasuredGroup, PrimaryAgentSpec
from rendering.swarm_node import SwarmNodeSpec, render_swarm_node
from stack_config.models import NodeGroup, Rebalancer, TagVariable

DOCKER_API_PORT = 2375
SWARM_MANAGER_PORT = 4000


@dataclass(frozen=True)
class SwarmContext:
    """What every node group shares beyond the cluster's facts: the services' endpoints and the nodes' software."""

    account_id: pulumi.Input[str]
    partition: pulumi.Input[str]
    agents: NodeAgentsArchive
    primary_agent: PrimaryAgentSpec  # what the managers' primary-agent measures and rebalances
    node_security_group_id: pulumi.Input[str]
    consul_endpoint: pulumi.Input[str]
    registry_endpoint: pulumi.Input[str]
    zone_id: pulumi.Input[str]
    image: str  # classic Swarm's image, e.g. swarm:1.2.9
    tag_variables: Sequence[TagVariable]


@dataclass(frozen=True)
class SwarmNodeGroupArgs:
    group: NodeGroup
    cluster: ClusterContext
    swarm: SwarmContext
    config_key: str  # where the stack file declares the group, e.g. swarm-cluster:nodeGroups[2]: errors name it


class SwarmNodeGroup(pulumi.ComponentResource):
    autoscaling_group_name: pulumi.Output[str]
    launch_template_id: pulumi.Output[str]
    launch_template_version: pulumi.Output[int]
    security_group_id: pulumi.Output[str]
    role_arn: pulumi.Output[str]
    manager_endpoint: pulumi.Output[str] | None

    def __init__(self, name: str, args: SwarmNodeGroupArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("swarmcluster:nodes:SwarmNodeGroup", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        group, cluster, swarm = args.group, args.cluster, args.swarm
        guard = self._security_group(name, args, child)
        endpoint = self._manager_endpoint(name, args, guard, child) if group.swarmManager else None
        fleet = RancherOSFleet(
            name,
            RancherOSFleetArgs(
                ami_id=cluster.host_image.ami_id,
                instance_type=group.instanceType,
                root_volume=cluster.host_image.root_volume(group.rootVolumeSizeGb),
                user_data=_user_data(args, name),
                security_group_ids=[swarm.node_security_group_id, guard.id],
                subnet_ids=cluster.subnet_ids,
                size=FleetSize(group.minSize, group.desiredCapacity, group.maxSize),
                instance_tags=instance_tags(args, name),
                tags=dict(cluster.tags),
                ssm_session_manager=cluster.access.ssmSessionManager,
                quorum=group.swarmManager,
                min_healthy_percentage=group.minHealthyPercentage,
                protect_from_scale_in=group.scale_in_protected,
                target_group_arns=[endpoint.target_group_arn] if endpoint else [],
                autoscaled=group.autoscaled,
                policy_statements=[
                    lifecycle_statement(name, swarm.partition, cluster.region, swarm.account_id),
                    *([metric_statement(cluster.environment)] if group.swarmManager else []),
                    *swarm.agents.read_statements,
                ],
                drain_window_seconds=group.drainWindowSeconds,
            ),
            child,
        )
        termination_hook(name, fleet.autoscaling_group_name, child)
        if group.autoscaled:
            self._target_tracking(name, group, cluster, fleet, child)
        self.autoscaling_group_name = fleet.autoscaling_group_name
        self.launch_template_id = fleet.launch_template_id
        self.launch_template_version = fleet.launch_template_version
        self.security_group_id = guard.id
        self.role_arn = fleet.role_arn
        self.manager_endpoint = endpoint.address if endpoint else None
        outputs: dict[str, pulumi.Input[object]] = {
            "autoscalingGroupName": self.autoscaling_group_name,
            "launchTemplateId": self.launch_template_id,
            "launchTemplateVersion": self.launch_template_version,
            "securityGroupId": self.security_group_id,
            "roleArn": self.role_arn,
        }
        if self.manager_endpoint is not None:
            outputs["managerEndpoint"] = self.manager_endpoint
        self.register_outputs(outputs)

    def _security_group(
        self, name: str, args: SwarmNodeGroupArgs, child: pulumi.ResourceOptions
    ) -> aws.ec2.SecurityGroup:
        group, cluster = args.group, args.cluster
        guard = aws.ec2.SecurityGroup(
            f"{name}-sg",
            aws.ec2.SecurityGroupArgs(
                name=name,
                description=f"Swarm node group {group.name}: ports of this group only",
                vpc_id=cluster.vpc_id,
                tags={**cluster.tags, "Name": name},
            ),
            child,
        )
        # (rule name, protocol, port, description, source CIDR, source security group)
        openings: list[tuple[str, str, int, str, str | None, pulumi.Input[str] | None]] = [
            (f"{name}-in-{i.protocol}-{i.port}-{k}", i.protocol, i.port, i.description, cidr, None)
            for i in group.ingress
            for k, cidr in enumerate(i.cidrs)
        ]
        openings += [
            (f"{name}-in-ssh-{k}", "tcp", SSH_PORT, "SSH from admins", cidr, None)
            for k, cidr in enumerate(cluster.access.sshCidrs)
        ]
        if group.swarmManager:
            openings += [
                (f"{name}-in-swarm-{k}", "tcp", SWARM_MANAGER_PORT, "Swarm API from admins", cidr, None)
                for k, cidr in enumerate(cluster.access.adminCidrs)
            ]
            openings += [
                (f"{name}-in-swarm-sg-{k}", "tcp", SWARM_MANAGER_PORT, "Swarm API from admins", None, source)
                for k, source in enumerate(cluster.access.adminSecurityGroupIds)
            ]
            # Replica managers (--replication) forward every API call to the primary's :4000.
            openings.append(
                (f"{name}-in-swarm-peers", "tcp", SWARM_MANAGER_PORT, "Swarm replicas to the primary", None, guard.id)
            )
        for rule_name, protocol, port, description, cidr, source in openings:
            allow(rule_name, guard.id, protocol, port, description, child, cidr=cidr, source_group_id=source)
        return guard

    def _manager_endpoint(
        self, name: str, args: SwarmNodeGroupArgs, guard: aws.ec2.SecurityGroup, child: pulumi.ResourceOptions
    ) -> InternalEndpoint:
        cluster, swarm = args.cluster, args.swarm
        # Managers drive every engine of the cluster; nothing else may reach the Docker API.
        allow(
            f"{name}-docker-api",
            swarm.node_security_group_id,
            "tcp",
            DOCKER_API_PORT,
            "Docker API from the Swarm managers only",
            child,
            source_group_id=guard.id,
        )
        return InternalEndpoint(
            f"{name}-endpoint",
            InternalEndpointArgs(
                balancer_name=f"{cluster.environment}-swarm",
                vpc_id=cluster.vpc_id,
                subnet_ids=cluster.subnet_ids,
                port=SWARM_MANAGER_PORT,
                zone_id=swarm.zone_id,
                record_name=f"swarm.{cluster.zone_name}",
                target_security_group_id=guard.id,
                client_cidrs=cluster.access.adminCidrs,
                client_security_group_ids=list(cluster.access.adminSecurityGroupIds),
                tags=cluster.tags,
            ),
            child,
        )

    def _target_tracking(
        self,
        name: str,
        group: NodeGroup,
        cluster: ClusterContext,
        fleet: RancherOSFleet,
        child: pulumi.ResourceOptions,
    ) -> None:
        """CPU, and beside it the capacity reservation: the group scales out when either policy asks and in only
        when both agree (AWS target tracking with several policies), so containers that reserve much and burn
        little still get nodes."""
        tracking = aws.autoscaling.PolicyTargetTrackingConfigurationArgs
        predefined = aws.autoscaling.PolicyTargetTrackingConfigurationPredefinedMetricSpecificationArgs
        customized = aws.autoscaling.PolicyTargetTrackingConfigurationCustomizedMetricSpecificationArgs
        dimension = aws.autoscaling.PolicyTargetTrackingConfigurationCustomizedMetricSpecificationMetricDimensionArgs
        policies = {
            "cpu": tracking(
                predefined_metric_specification=predefined(predefined_metric_type="ASGAverageCPUUtilization"),
                target_value=float(group.scaling.cpuTargetPercent),
                disable_scale_in=group.scaling.disableScaleIn,
            ),
            "reservation": tracking(
                customized_metric_specification=customized(
                    namespace=capacity.namespace(cluster.environment),
                    metric_name=capacity.METRIC_NAME,
                    metric_dimensions=[dimension(name=capacity.DIMENSION, value=group.name)],
                    statistic="Average",
                    unit="Percent",
                ),
                target_value=float(group.reservation_target_percent),
                disable_scale_in=group.scaling.disableScaleIn,
            ),
        }
        for kind, configuration in policies.items():
            aws.autoscaling.Policy(
                f"{name}-{kind}",
                aws.autoscaling.PolicyArgs(
                    name=f"{name}-{kind}-target",
                    autoscaling_group_name=fleet.autoscaling_group_name,
                    policy_type="TargetTrackingScaling",
                    target_tracking_configuration=configuration,
                ),
                child,
            )


def metric_statement(environment: str) -> dict[str, Any]:
    """PutMetricData has no resource ARN; its namespace condition keeps the managers to the cluster's own."""
    return {
        "Effect": "Allow",
        "Action": "cloudwatch:PutMetricData",
        "Resource": "*",
        "Condition": {"StringEquals": {"cloudwatch:namespace": capacity.namespace(environment)}},
    }


def engine_labels(group: NodeGroup, environment: str) -> dict[str, str]:
    return {"docker.environment": environment, "docker.role": group.role, **group.labels}


def instance_tags(args: SwarmNodeGroupArgs, name: str) -> dict[str, str]:
    """Every tag a node carries: what Swarm filters on, what becomes its environment, and cost tags."""
    group, cluster, swarm = args.group, args.cluster, args.swarm
    component = "swarm-manager" if group.swarmManager else "swarm-node"
    return {
        **cluster.tags,
        **{t.tag: t.value for t in swarm.tag_variables},
        **engine_labels(group, cluster.environment),
        "cluster.component": component,
        "Name": name,
    }


def _user_data(args: SwarmNodeGroupArgs, name: str) -> pulumi.Output[str]:
    group, cluster, swarm = args.group, args.cluster, args.swarm

    def render(inputs: list[Any]) -> str:
        consul, registry, agents = inputs
        spec = SwarmNodeSpec(
            environment=cluster.environment,
            group=group.name,
            engine_labels=engine_labels(group, cluster.environment),
            variables={t.variable: t.value for t in swarm.tag_variables},
            swarm_manager=group.swarmManager,
            swarm_image=swarm.image,
            consul_endpoint=consul,
            registry_endpoint=registry,
            ssh_authorized_keys=cluster.access.sshAuthorizedKeys,
            instance_type=group.instanceType,
            drain=DrainSpec(name, hook_name(name), group.drainWindowSeconds),
            managers=group.desiredCapacity if group.swarmManager else 0,
            agents=agents,
            primary_agent=swarm.primary_agent if group.swarmManager else None,
        )
        return rendered(args.config_key, lambda: render_swarm_node(spec))

    return pulumi.Output.all(swarm.consul_endpoint, swarm.registry_endpoint, swarm.agents.archive).apply(render)


def primary_agent_spec(environment: str, groups: Sequence[NodeGroup], rebalancer: Rebalancer) -> PrimaryAgentSpec:
    """The managers' primary-agent measures every autoscaled group and rebalances the roles that opted in."""
    return PrimaryAgentSpec(
        environment=environment,
        groups=[MeasuredGroup(g.name, g.role, g.reservation_target_percent) for g in groups if g.autoscaled],
        rebalance_roles=[g.role for g in groups if g.rebalance],
        rebalancer=rebalancer.model_dump(),
    )
