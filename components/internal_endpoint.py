"""InternalEndpoint: a stable private name (Route53 alias) for one TCP port of an autoscaling group.

An internal network load balancer with its own security group in front of the group: clients are
allowed on the load balancer, and the targets accept the port only from the load balancer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.security_rules import allow
from stack_config.aws_names import fit_name


@dataclass(frozen=True)
class InternalEndpointArgs:
    balancer_name: str  # AWS name of the load balancer (fitted to 32 characters); the target group adds "-<port>"
    vpc_id: str
    subnet_ids: Sequence[str]
    port: int
    zone_id: pulumi.Input[str]
    record_name: str  # fully qualified, e.g. consul.staging.example.internal
    target_security_group_id: pulumi.Input[str]
    client_cidrs: Sequence[str] = ()
    client_security_group_ids: Sequence[pulumi.Input[str]] = field(default_factory=list)
    health_check_path: str | None = None  # HTTP check on this path; TCP connect when None
    tags: Mapping[str, str] = field(default_factory=dict)


class InternalEndpoint(pulumi.ComponentResource):
    target_group_arn: pulumi.Output[str]
    address: pulumi.Output[str]  # host:port

    def __init__(self, name: str, args: InternalEndpointArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("swarmcluster:network:InternalEndpoint", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)
        guard = aws.ec2.SecurityGroup(
            f"{name}-lb-sg",
            aws.ec2.SecurityGroupArgs(
                name=f"{args.balancer_name}-lb",
                description=f"Clients of the {args.balancer_name} load balancer",
                vpc_id=args.vpc_id,
                tags={**tags, "Name": f"{args.balancer_name}-lb"},
            ),
            child,
        )
        self._open(name, args, guard, child)
        balancer = aws.lb.LoadBalancer(
            f"{name}-nlb",
            aws.lb.LoadBalancerArgs(
                name=fit_name(args.balancer_name, "aws:lb/loadBalancer:LoadBalancer"),
                internal=True,
                load_balancer_type="network",
                subnets=list(args.subnet_ids),
                security_groups=[guard.id],
                enable_cross_zone_load_balancing=True,
                tags=tags,
            ),
            child,
        )
        targets = aws.lb.TargetGroup(
            f"{name}-tg",
            aws.lb.TargetGroupArgs(
                # A new port replaces the target group: a new name lets the replacement exist beside the old.
                name=fit_name(f"{args.balancer_name}-{args.port}", "aws:lb/targetGroup:TargetGroup"),
                port=args.port,
                protocol="TCP",
                target_type="instance",
                vpc_id=args.vpc_id,
                # Targets then see the load balancer as the source, so they can allow its security group.
                preserve_client_ip="false",
                deregistration_delay=30,
                health_check=_health_check(args),
                tags=tags,
            ),
            child,
        )
        aws.lb.Listener(
            f"{name}-listener",
            aws.lb.ListenerArgs(
                load_balancer_arn=balancer.arn,
                port=args.port,
                protocol="TCP",
                default_actions=[aws.lb.ListenerDefaultActionArgs(type="forward", target_group_arn=targets.arn)],
                tags=tags,
            ),
            child,
        )
        record = aws.route53.Record(
            f"{name}-dns",
            aws.route53.RecordArgs(
                zone_id=args.zone_id,
                name=args.record_name,
                type="A",
                aliases=[
                    aws.route53.RecordAliasArgs(
                        name=balancer.dns_name, zone_id=balancer.zone_id, evaluate_target_health=True
                    )
                ],
            ),
            child,
        )
        self.target_group_arn = targets.arn
        # From the record's input, not its computed fqdn, so previews show the address.
        self.address = record.name.apply(lambda host: f"{host}:{args.port}")
        self.register_outputs({"targetGroupArn": targets.arn, "address": self.address})

    def _open(
        self, name: str, args: InternalEndpointArgs, guard: aws.ec2.SecurityGroup, child: pulumi.ResourceOptions
    ) -> None:
        port = args.port
        for i, cidr in enumerate(args.client_cidrs):
            allow(f"{name}-from-cidr-{i}", guard.id, "tcp", port, f"admin clients {cidr}", child, cidr=cidr)
        for i, source in enumerate(args.client_security_group_ids):
            allow(
                f"{name}-from-sg-{i}", guard.id, "tcp", port, "clients by security group", child, source_group_id=source
            )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-to-targets",
            aws.vpc.SecurityGroupEgressRuleArgs(
                security_group_id=guard.id,
                ip_protocol="tcp",
                from_port=port,
                to_port=port,
                referenced_security_group_id=args.target_security_group_id,
                description="forward to the targets",
            ),
            child,
        )
        allow(
            f"{name}-targets-from-lb",
            args.target_security_group_id,
            "tcp",
            port,
            f"{args.record_name} load balancer and its health checks",
            child,
            source_group_id=guard.id,
        )


def _health_check(args: InternalEndpointArgs) -> aws.lb.TargetGroupHealthCheckArgs:
    if args.health_check_path is None:
        return aws.lb.TargetGroupHealthCheckArgs(protocol="TCP", port="traffic-port", interval=10)
    return aws.lb.TargetGroupHealthCheckArgs(
        protocol="HTTP", port="traffic-port", path=args.health_check_path, matcher="200", interval=10
    )
