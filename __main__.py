"""A Docker Swarm cluster of stateless RancherOS nodes for one environment (one stack)."""

import pulumi
import pulumi_aws as aws

from components import stack_settings
from components.cluster_services import ClusterServices, ClusterServicesArgs, HostImage
from components.node_agents_archive import NodeAgentsArchive, NodeAgentsArchiveArgs
from components.swarm_node_group import (
    SwarmClusterContext,
    SwarmNodeGroup,
    SwarmNodeGroupArgs,
    TagVariable,
    primary_agent_spec,
)
from rendering.swarm_node import AGENT_MODULES

config = stack_settings.load()
environment = config.cluster.environment
subnet_ids = [s.id for s in config.network.subnets]
# The root volume mapping must name the AMI's own root device, or it adds a second, blank volume.
ami = aws.ec2.get_ami_output(filters=[aws.ec2.GetAmiFilterArgs(name="image-id", values=[config.rancheros.amiId])])
# IAM policies name the deploying account's resources by ARN.
caller = aws.get_caller_identity_output()

services = ClusterServices(
    f"{environment}-cluster",
    ClusterServicesArgs(
        environment=environment,
        region=config.region,
        vpc_id=config.network.vpcId,
        subnet_ids=subnet_ids,
        zone_name=config.dns.internalZone,
        existing_zone_id=config.dns.existingZoneId,
        consul=config.consul,
        registry=config.registry,
        registry_http_secret=stack_settings.registry_http_secret(),
        consul_gossip_key=stack_settings.consul_gossip_key(),
        host_image=HostImage(config.rancheros.amiId, ami.root_device_name, config.rancheros.kmsKeyArn),
        admin_cidrs=config.access.adminCidrs,
        admin_security_group_ids=config.access.adminSecurityGroupIds,
        ssh_cidrs=config.access.sshCidrs,
        ssh_authorized_keys=config.access.sshAuthorizedKeys,
        ssm_session_manager=config.access.ssmSessionManager,
        protect_data=config.cluster.highAvailability,
        tags=config.tags,
    ),
)

partition = caller.arn.apply(lambda arn: arn.split(":")[1])
agents = NodeAgentsArchive(
    f"{environment}-node-agents",
    NodeAgentsArchiveArgs(
        bucket=services.registry_bucket,
        region=config.region,
        partition=partition,
        entry_points=AGENT_MODULES,
        kms_key_arn=config.rancheros.kmsKeyArn,
        tags=config.tags,
    ),
)

cluster = SwarmClusterContext(
    environment=environment,
    region=config.region,
    account_id=caller.account_id,
    partition=partition,
    agents=agents,
    primary_agent=primary_agent_spec(environment, config.nodeGroups, config.swarm.rebalancer),
    vpc_id=config.network.vpcId,
    subnet_ids=subnet_ids,
    node_security_group_id=services.node_security_group_id,
    consul_endpoint=services.consul_endpoint,
    registry_endpoint=services.registry_endpoint,
    zone_id=services.zone_id,
    zone_name=config.dns.internalZone,
    ami_id=config.rancheros.amiId,
    root_device_name=ami.root_device_name,
    kms_key_arn=config.rancheros.kmsKeyArn,
    swarm_image=config.swarm.image,
    admin_cidrs=config.access.adminCidrs,
    admin_security_group_ids=config.access.adminSecurityGroupIds,
    ssh_cidrs=config.access.sshCidrs,
    ssh_authorized_keys=config.access.sshAuthorizedKeys,
    ssm_session_manager=config.access.ssmSessionManager,
    tag_variables=[TagVariable(t.tag, t.variable, t.value) for t in config.tagVariables],
    tags=config.tags,
)

groups = {
    group.name: SwarmNodeGroup(f"{environment}-{group.name}", SwarmNodeGroupArgs(group=group, cluster=cluster))
    for group in config.nodeGroups
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
