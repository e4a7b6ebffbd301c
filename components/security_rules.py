"""One ingress rule: a single port from a single source, the only shape of rule the components use."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

SSH_PORT = 22


def allow(
    name: str,
    security_group_id: pulumi.Input[str],
    protocol: str,
    port: int,
    description: str,
    opts: pulumi.ResourceOptions,
    *,
    cidr: str | None = None,
    source_group_id: pulumi.Input[str] | None = None,
) -> aws.vpc.SecurityGroupIngressRule:
    if (cidr is None) == (source_group_id is None):
        raise ValueError(f"{name}: give exactly one source, a CIDR or a security group")
    return aws.vpc.SecurityGroupIngressRule(
        name,
        aws.vpc.SecurityGroupIngressRuleArgs(
            security_group_id=security_group_id,
            ip_protocol=protocol,
            from_port=port,
            to_port=port,
            cidr_ipv4=cidr,
            referenced_security_group_id=source_group_id,
            description=description,
        ),
        opts,
    )
