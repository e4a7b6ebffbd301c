"""ClusterServices: what every Swarm node depends on, with no state on any instance that could be lost.

- a private Route53 zone (or an existing one) for the internal names;
- the cluster security group every Swarm node carries, which allows overlay traffic among nodes;
- Consul servers (Swarm discovery and the overlay network store) that find each other by EC2 tag,
  encrypt their gossip, and snapshot their state into the cluster bucket (restored into an empty cluster);
- the private Docker registry, storing images in the same encrypted, versioned S3 bucket;
- the node agents' archive in that bucket, which every host runs its agents from;
- the two secrets as SSM SecureString parameters, each readable by the one role whose hosts fetch it at boot:
  the gossip key by the Consul servers, the registry's http secret by the registry hosts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.cluster_context import ClusterContext
from components.internal_endpoint import InternalEndpoint, InternalEndpointArgs
from components.node_agents_archive import NodeAgentsArchive, NodeAgentsArchiveArgs
from components.rancheros_fleet import FleetSize, RancherOSFleet, RancherOSFleetArgs
from components.registry_bucket import SNAPSHOT_PREFIX, RegistryBucket, RegistryBucketArgs
from components.secret_parameter import SecretParameter, SecretParameterArgs
from components.security_rules import SSH_PORT, allow
from components.user_data import rendered
from rendering.consul_server import ConsulServerSpec, SnapshotSpec, render_consul_server
from rendering.host_secret import parameter_name
from rendering.registry import HttpSecret, RegistrySpec, render_registry_host
from stack_config.loader import NAMESPACE
from stack_config.models import Consul, Registry

CONSUL_HTTP_PORT = 8500
CONSUL_JOIN_TAG = "consul.cluster"
# Server RPC, LAN and WAN gossip: only Consul servers talk on these.
CONSUL_SERVER_PORTS = (("tcp", 8300), ("tcp", 8301), ("udp", 8301), ("tcp", 8302), ("udp", 8302))
# Classic Swarm overlay networks: serf gossip (tcp+udp 7946) and VXLAN data (udp 4789).
OVERLAY_PORTS = (("tcp", 7946), ("udp", 7946), ("udp", 4789))


@dataclass(frozen=True)
class ClusterServicesArgs:
    cluster: ClusterContext
    existing_zone_id: str | None
    consul: Consul
    registry: Registry
    registry_http_secret: pulumi.Input[str] | None
    consul_gossip_key: pulumi.Input[str]
    protect_data: bool  # keep the registry bucket through `pulumi destroy` and refuse to delete it


class ClusterServices(pulumi.ComponentResource):
    zone_id: pulumi.Output[str]
    consul_endpoint: pulumi.Output[str]
    registry_endpoint: pulumi.Output[str]
    node_security_group_id: pulumi.Output[str]
    registry_bucket: pulumi.Output[str]
    agents: NodeAgentsArchive

    def __init__(self, name: str, args: ClusterServicesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("swarmcluster:services:ClusterServices", name, None, opts)
        self._name, self._args = name, args
        child = pulumi.ResourceOptions(parent=self)
        self.zone_id = self._zone(child)
        nodes = self._security_group("nodes", "Every Swarm node: overlay networking among nodes", child)
        for protocol, port in OVERLAY_PORTS:
            rule = f"{name}-overlay-{protocol}-{port}"
            allow(rule, nodes.id, protocol, port, "overlay among Swarm nodes", child, source_group_id=nodes.id)
        self.node_security_group_id = nodes.id
        bucket = RegistryBucket(
            f"{name}-registry-bucket",
            RegistryBucketArgs(
                args.registry.bucketName,
                args.cluster.host_image.kms_key_arn,
                args.protect_data,
                args.consul.snapshots.retentionDays,
                args.cluster.tags,
            ),
            child,
        )
        self.agents = NodeAgentsArchive(
            f"{name}-node-agents",
            NodeAgentsArchiveArgs(
                bucket.bucket_name,
                bucket.arn,
                args.cluster.region,
                args.cluster.host_image.kms_key_arn,
                args.cluster.tags,
            ),
            child,
        )
        self.consul_endpoint = self._consul(nodes, bucket, child)
        self.registry_bucket = bucket.bucket_name
        self.registry_endpoint = self._registry(nodes, bucket, child)
        self.register_outputs(
            {
                "zoneId": self.zone_id,
                "consulEndpoint": self.consul_endpoint,
                "registryEndpoint": self.registry_endpoint,
                "nodeSecurityGroupId": self.node_security_group_id,
                "registryBucket": self.registry_bucket,
            }
        )

    def _zone(self, child: pulumi.ResourceOptions) -> pulumi.Output[str]:
        args = self._args
        if args.existing_zone_id is not None:
            return pulumi.Output.from_input(args.existing_zone_id)
        zone = aws.route53.Zone(
            f"{self._name}-zone",
            aws.route53.ZoneArgs(
                name=args.cluster.zone_name,
                comment=f"Internal names of the {args.cluster.environment} Swarm cluster",
                vpcs=[aws.route53.ZoneVpcArgs(vpc_id=args.cluster.vpc_id, vpc_region=args.cluster.region)],
                tags=dict(args.cluster.tags),
            ),
            child,
        )
        return zone.zone_id

    def _consul(
        self, nodes: aws.ec2.SecurityGroup, bucket: RegistryBucket, child: pulumi.ResourceOptions
    ) -> pulumi.Output[str]:
        args, name = self._args, f"{self._name}-consul"
        servers = self._security_group("consul", "Consul servers", child)
        self._allow_ssh(servers, "consul", child)
        for protocol, port in CONSUL_SERVER_PORTS:
            rule = f"{self._name}-consul-{protocol}-{port}"
            allow(rule, servers.id, protocol, port, "Consul servers", child, source_group_id=servers.id)
        endpoint = InternalEndpoint(
            f"{name}-endpoint",
            self._endpoint_args("consul", CONSUL_HTTP_PORT, servers, nodes, health_check_path=None),
            child,
        )
        count = args.consul.serverCount
        gossip_key = self._secret("consul-gossip-key", "Consul gossip encryption key", args.consul_gossip_key, child)

        def render(values: list[Any]) -> str:
            bucket_name, agents = values
            spec = ConsulServerSpec(
                environment=args.cluster.environment,
                datacenter=args.cluster.environment,
                image=args.consul.image,
                bootstrap_expect=count,
                region=args.cluster.region,
                join_tag_key=CONSUL_JOIN_TAG,
                join_tag_value=args.cluster.environment,
                ssh_authorized_keys=args.cluster.access.sshAuthorizedKeys,
                instance_type=args.consul.instanceType,
                gossip_key_parameter=gossip_key.name,
                gossip_enforcement=args.consul.gossipEnforcement,
                snapshots=SnapshotSpec(
                    bucket=bucket_name,
                    prefix=SNAPSHOT_PREFIX,
                    interval_seconds=args.consul.snapshots.intervalMinutes * 60,
                    kms_key_id=args.cluster.host_image.kms_key_arn,
                ),
                agents=agents,
            )
            return rendered(f"{NAMESPACE}:consul", lambda: render_consul_server(spec))

        RancherOSFleet(
            name,
            RancherOSFleetArgs(
                ami_id=args.cluster.host_image.ami_id,
                instance_type=args.consul.instanceType,
                root_volume=args.cluster.host_image.root_volume(args.consul.rootVolumeSizeGb),
                user_data=pulumi.Output.all(bucket.bucket_name, self.agents.archive).apply(render),
                security_group_ids=[servers.id],
                subnet_ids=args.cluster.subnet_ids,
                size=FleetSize(count, count, count),
                instance_tags=self._instance_tags(name, "consul-server", {CONSUL_JOIN_TAG: args.cluster.environment}),
                tags=dict(args.cluster.tags),
                # Cloud auto-join lists instances by tag; DescribeInstances takes no resource scope.
                policy_statements=[
                    {
                        "Sid": "ConsulCloudAutoJoin",
                        "Effect": "Allow",
                        "Action": "ec2:DescribeInstances",
                        "Resource": "*",
                        "Condition": {"StringEquals": {"aws:RequestedRegion": args.cluster.region}},
                    },
                    *bucket.snapshot_access_statements,
                    *self.agents.read_statements,
                    *gossip_key.read_statements,
                ],
                ssm_session_manager=args.cluster.access.ssmSessionManager,
                quorum=True,
                target_group_arns=[endpoint.target_group_arn],
            ),
            child,
        )
        return endpoint.address

    def _registry(
        self, nodes: aws.ec2.SecurityGroup, bucket: RegistryBucket, child: pulumi.ResourceOptions
    ) -> pulumi.Output[str]:
        args, name = self._args, f"{self._name}-registry"
        hosts = self._security_group("registry", "Docker registry hosts", child)
        self._allow_ssh(hosts, "registry", child)
        endpoint = InternalEndpoint(
            f"{name}-endpoint",
            self._endpoint_args("docker", args.registry.port, hosts, nodes, health_check_path="/v2/"),
            child,
        )
        replicas, statements = args.registry.replicas, list(bucket.access_statements)
        secret = None
        if args.registry_http_secret is not None:
            secret = self._secret(
                "registry-http-secret", "Docker registry http.secret", args.registry_http_secret, child
            )
            statements += [*secret.read_statements, *self.agents.read_statements]

        def render(values: list[Any]) -> str:
            bucket_name, agents = values
            http_secret = None if secret is None else HttpSecret(secret.name, agents)
            spec = RegistrySpec(
                environment=args.cluster.environment,
                image=args.registry.image,
                port=args.registry.port,
                bucket=bucket_name,
                region=args.cluster.region,
                http_secret=http_secret,
                ssh_authorized_keys=args.cluster.access.sshAuthorizedKeys,
                instance_type=args.registry.instanceType,
                kms_key_id=args.cluster.host_image.kms_key_arn,
            )
            return rendered(f"{NAMESPACE}:registry", lambda: render_registry_host(spec))

        user_data = pulumi.Output.all(bucket.bucket_name, self.agents.archive).apply(render)
        RancherOSFleet(
            name,
            RancherOSFleetArgs(
                ami_id=args.cluster.host_image.ami_id,
                instance_type=args.registry.instanceType,
                root_volume=args.cluster.host_image.root_volume(args.registry.rootVolumeSizeGb),
                user_data=user_data,
                security_group_ids=[hosts.id],
                subnet_ids=args.cluster.subnet_ids,
                size=FleetSize(replicas, replicas, replicas),
                instance_tags=self._instance_tags(name, "registry", {}),
                tags=dict(args.cluster.tags),
                policy_statements=statements,
                ssm_session_manager=args.cluster.access.ssmSessionManager,
                min_healthy_percentage=100,
                # /v2/ fails while S3 does: the load balancer stops routing, but replacing hosts would not help.
                target_group_arns=[endpoint.target_group_arn],
            ),
            child,
        )
        return endpoint.address

    def _secret(
        self, secret: str, description: str, value: pulumi.Input[str], child: pulumi.ResourceOptions
    ) -> SecretParameter:
        cluster = self._args.cluster
        return SecretParameter(
            f"{self._name}-{secret}",
            SecretParameterArgs(
                parameter_name=parameter_name(cluster.environment, secret),
                description=f"{description} of the {cluster.environment} cluster (fetched by its hosts at boot)",
                value=value,
                statement_id="".join(word.capitalize() for word in secret.split("-")),
                region=cluster.region,
                kms_key_arn=cluster.host_image.kms_key_arn,
                tags=cluster.tags,
            ),
            child,
        )

    def _endpoint_args(
        self,
        host: str,
        port: int,
        targets: aws.ec2.SecurityGroup,
        nodes: aws.ec2.SecurityGroup,
        health_check_path: str | None,
    ) -> InternalEndpointArgs:
        args = self._args
        service = "registry" if host == "docker" else host
        return InternalEndpointArgs(
            balancer_name=f"{args.cluster.environment}-{service}",
            vpc_id=args.cluster.vpc_id,
            subnet_ids=args.cluster.subnet_ids,
            port=port,
            zone_id=self.zone_id,
            record_name=f"{host}.{args.cluster.zone_name}",
            target_security_group_id=targets.id,
            client_cidrs=args.cluster.access.adminCidrs,
            client_security_group_ids=[nodes.id, *args.cluster.access.adminSecurityGroupIds],
            health_check_path=health_check_path,
            tags=args.cluster.tags,
        )

    def _security_group(self, role: str, description: str, child: pulumi.ResourceOptions) -> aws.ec2.SecurityGroup:
        aws_name = f"{self._args.cluster.environment}-{role}"
        guard = aws.ec2.SecurityGroup(
            f"{self._name}-{role}-sg",
            aws.ec2.SecurityGroupArgs(
                name=aws_name,
                description=description,
                vpc_id=self._args.cluster.vpc_id,
                tags={**self._args.cluster.tags, "Name": aws_name},
            ),
            child,
        )
        # Hosts pull images, reach S3 and the EC2 API; outbound stays open, inbound is by rule only.
        aws.vpc.SecurityGroupEgressRule(
            f"{self._name}-{role}-egress",
            aws.vpc.SecurityGroupEgressRuleArgs(
                security_group_id=guard.id, ip_protocol="-1", cidr_ipv4="0.0.0.0/0", description="all outbound"
            ),
            child,
        )
        return guard

    def _allow_ssh(self, guard: aws.ec2.SecurityGroup, role: str, child: pulumi.ResourceOptions) -> None:
        for k, cidr in enumerate(self._args.cluster.access.sshCidrs):
            allow(f"{self._name}-{role}-ssh-{k}", guard.id, "tcp", SSH_PORT, "SSH from admins", child, cidr=cidr)

    def _instance_tags(self, name: str, component: str, extra: Mapping[str, str]) -> dict[str, str]:
        return {
            **self._args.cluster.tags,
            **extra,
            "docker.environment": self._args.cluster.environment,
            "cluster.component": component,
            "Name": name,
        }
