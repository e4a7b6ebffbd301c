"""Cross-key rules for what AWS itself would refuse at deploy time, long after `pulumi preview` passed."""

from __future__ import annotations

from collections.abc import Iterator

from stack_config.rules import Problem, Sections, duplicates


def aws_problems(config: Sections) -> list[Problem]:
    return [*_security_group_rules(config), *_kms_region(config)]


def _security_group_rules(config: Sections) -> Iterator[Problem]:
    """Each list item becomes one security-group rule: a second identical rule is InvalidPermission.Duplicate,
    and two ingress entries for one port and protocol would be two resources of one name."""
    if config.access is not None:
        for field in ("adminCidrs", "adminSecurityGroupIds", "sshCidrs"):
            yield from duplicates(f"access.{field}[{{}}]", getattr(config.access, field))
    for i, group in enumerate(config.nodeGroups or []):
        yield from duplicates(
            f"nodeGroups[{i}].ingress[{{}}].port",
            [f"{e.port}/{e.protocol}" for e in group.ingress],
            "merge their cidrs",
        )
        for j, ingress in enumerate(group.ingress):
            yield from duplicates(f"nodeGroups[{i}].ingress[{j}].cidrs[{{}}]", ingress.cidrs)


def _kms_region(config: Sections) -> Iterator[Problem]:
    """EBS volumes and the registry bucket can only use a key of their own region."""
    key = config.rancheros.kmsKeyArn if config.rancheros is not None else None
    if key is None or config.region is None:
        return
    region = key.split(":")[3]
    if region != config.region:
        yield (
            "rancheros.kmsKeyArn",
            f"the key is in {region}, the stack in {config.region} (aws:region); use a key of {config.region}",
        )
