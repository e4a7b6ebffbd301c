"""The facts about one environment's cluster that every component needs, built once from the stack config."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi

from components.rancheros_fleet import RootVolume
from stack_config.models import Access


@dataclass(frozen=True)
class HostImage:
    """The RancherOS AMI every host boots, its root device, and the key its volumes are encrypted with."""

    ami_id: str
    root_device_name: pulumi.Input[str]  # the AMI's own root device: another name would add a blank volume
    kms_key_arn: str | None  # None: the account's default EBS key

    def root_volume(self, size_gb: int) -> RootVolume:
        return RootVolume(self.root_device_name, size_gb, self.kms_key_arn)


@dataclass(frozen=True)
class ClusterContext:
    environment: str
    region: str
    vpc_id: str
    subnet_ids: Sequence[str]
    zone_name: str  # the private zone's name, e.g. staging.internal
    host_image: HostImage
    access: Access  # who may reach the hosts and their APIs, and how
    tags: Mapping[str, str]  # cost tags on every resource that takes tags
