"""AWS name limits of the resources the program names, and a deterministic way to fit a name into one.

Names are built from the environment and group names (up to 22 characters each), so some can exceed
what AWS accepts (a target group `<environment>-registry-5000` reaches 36 of 32). Such a name keeps its
readable start and ends in a hash of the whole name: the same input always gives the same name (no
replacement on the next deploy), and two long names sharing a prefix still differ.
"""

from __future__ import annotations

import hashlib

# Pulumi type token -> the most characters AWS accepts in the resource's `name` (a test checks that every
# named resource the program declares has its type here).
NAME_LIMITS: dict[str, int] = {
    "aws:lb/targetGroup:TargetGroup": 32,
    "aws:lb/loadBalancer:LoadBalancer": 32,
    "aws:iam/role:Role": 64,
    "aws:iam/rolePolicy:RolePolicy": 128,
    "aws:iam/instanceProfile:InstanceProfile": 128,
    "aws:ec2/launchTemplate:LaunchTemplate": 128,
    "aws:ec2/securityGroup:SecurityGroup": 255,
    "aws:autoscaling/group:Group": 255,
    "aws:autoscaling/policy:Policy": 255,
    "aws:autoscaling/lifecycleHook:LifecycleHook": 255,
    "aws:ssm/parameter:Parameter": 1011,
}
_HASH_LENGTH = 8


def fit_name(name: str, type_token: str) -> str:
    """`name` if AWS accepts its length for `type_token`, else its start, '-' and a hash of the whole."""
    limit = NAME_LIMITS[type_token]
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:_HASH_LENGTH]
    return f"{name[: limit - _HASH_LENGTH - 1].rstrip('-')}-{digest}"
