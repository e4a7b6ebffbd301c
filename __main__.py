"""A Docker Swarm cluster of stateless RancherOS nodes for one environment (one stack)."""

import pulumi
import pulumi_aws as aws

from components import stack_settings
from components.cluster_context import ClusterContext, HostImage
from components.cluster_services import ClusterServices, ClusterServicesArgs
from components.swarm_node_group import SwarmContext, SwarmNodeGroup, SwarmNodeGroupArgs, primary_agent_spec
from stack_config.loader import NAMESPACE

config = stack_settings.load()
environment = config.cluster.environment
# The root volume mapping must name the AMI's own root device, or it adds a second, blank volume.
ami = aws.ec2.get_ami_output(filters=[aws.ec2.GetAmiFilterArgs(name="image-id", values=[config.rancheros.amiId])])
# IAM policies name the deploying account's resources by ARN.
caller = aws.get_caller_identity_output()

cluster = ClusterContext(
    environment=environment,
    region=config.region,
    vpc_id=config.network.vpcId,
    subnet_ids=[s.id for s in config.network.subnets],
    zone_name=config.dns.internalZone,
    host_image=HostImage(config.rancheros.amiId, ami.root_device_name, config.rancheros.kmsKeyArn),
    access=config.access,
    tags=config.tags,
)

services = ClusterServices(
    f"{environment}-cluster",
    ClusterServicesArgs(
        cluster=cluster,
        existing_zone_id=config.dns.existingZoneId,
        consul=config.consul,
        registry=config.registry,
        registry_http_secret=stack_settings.registry_http_secret(),
        consul_gossip_key=stack_settings.consul_gossip_key(),
        protect_data=config.cluster.highAvailability,
    ),
)

swarm = SwarmContext(
    account_id=caller.account_id,
    partition=caller.arn.apply(lambda arn: arn.split(":")[1]),
    agents=services.agents,
    primary_agent=primary_agent_spec(environment, config.nodeGroups, config.swarm.rebalancer),
    node_security_group_id=services.node_security_group_id,
    consul_endpoint=services.consul_endpoint,
    registry_endpoint=services.registry_endpoint,
    zone_id=services.zone_id,
    image=config.swarm.image,
    tag_variables=config.tagVariables,
)

groups = {
    group.name: SwarmNodeGroup(
        f"{environment}-{group.name}",
        SwarmNodeGroupArgs(group, cluster, swarm, config_key=f"{NAMESPACE}:nodeGroups[{index}]"),
    )
    for index, group in enumerate(config.nodeGroups)
}

pulumi.export("consulEndpoint", services.consul_endpoint)
pulumi.export("registryEndpoint", services.registry_endpoint)
pulumi.export("registryBucket", services.registry_bucket)
pulumi.export("internalZoneId", services.zone_id)
pulumi.export(
    "swarmManagerEndpoint",
    next(g.manager_endpoint for g in groups.values() if g.manager_endpoint is not None),
)
pulumi.export(
    "nodeGroups",
    {
        name: {
            "autoscalingGroupName": group.autoscaling_group_name,
            "launchTemplateId": group.launch_template_id,
            "launchTemplateVersion": group.launch_template_version,
            "securityGroupId": group.security_group_id,
            "roleArn": group.role_arn,
        }
        for name, group in groups.items()
    },
)
