"""The instance types RancherOS v1.5.8 nodes may run on, and the root disk each one shows the kernel.

One table: family -> (platform, sizes). Why these and no others:

- The AMI is x86_64 and RancherOS's kernel is Linux 4.14 with the in-tree ENA (network) and NVMe (EBS on
  Nitro) drivers. RancherOS itself maps c5/m5/r5/t3/z1d (by prefix, so also c5n, m5a, t3a, ...) to
  `/dev/nvme0n1` (rancher/os v1.5.8 config/cloudinit/datasource/metadata/ec2/metadata.go), which is
  where it was tested on Nitro.
- Sixth-generation Intel (m6i, c6i, r6i) is Nitro with the same ENA/NVMe devices. AWS documents older ENA
  drivers there as working with reduced network performance (ENA 2.2.9+ is advised for full speed), not
  as failing to boot. RancherOS guesses `/dev/xvda` for them, so `rancher.resize_device` is set from
  this table.
- Xen HVM families (t2, m4, c4, r4) show the EBS root disk as `/dev/xvda`.
- Refused: Graviton (`*g*` families, arm64), Mac (`mac*`, macOS only), bare metal sizes (`*.metal*`,
  no Xen/Nitro hypervisor devices RancherOS was built for), seventh generation and later, AMD sixth
  generation, GPU/accelerator and every other family nobody has shown RancherOS 1.5.8 to boot on.
  Adding a family here is the place to record that evidence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Platform = Literal["xen", "nitro"]
ROOT_DISK: dict[Platform, str] = {"xen": "/dev/xvda", "nitro": "/dev/nvme0n1"}

_BURST = "micro small medium large xlarge 2xlarge"
_M5 = "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge"
_C5 = "large xlarge 2xlarge 4xlarge 9xlarge 12xlarge 18xlarge 24xlarge"
_SIXTH = f"{_M5} 32xlarge"


@dataclass(frozen=True)
class Family:
    platform: Platform
    sizes: frozenset[str]


def _family(platform: Platform, sizes: str) -> Family:
    return Family(platform, frozenset(sizes.split()))


FAMILIES: dict[str, Family] = {
    "t2": _family("xen", _BURST),
    "m4": _family("xen", "large xlarge 2xlarge 4xlarge 10xlarge 16xlarge"),
    "c4": _family("xen", "large xlarge 2xlarge 4xlarge 8xlarge"),
    "r4": _family("xen", "large xlarge 2xlarge 4xlarge 8xlarge 16xlarge"),
    "t3": _family("nitro", _BURST),
    "t3a": _family("nitro", _BURST),
    "m5": _family("nitro", _M5),
    "m5a": _family("nitro", _M5),
    "m5d": _family("nitro", _M5),
    "m5n": _family("nitro", _M5),
    "c5": _family("nitro", _C5),
    "c5d": _family("nitro", _C5),
    "c5a": _family("nitro", "large xlarge 2xlarge 4xlarge 8xlarge 12xlarge 16xlarge 24xlarge"),
    "c5n": _family("nitro", "large xlarge 2xlarge 4xlarge 9xlarge 18xlarge"),
    "r5": _family("nitro", _M5),
    "r5a": _family("nitro", _M5),
    "r5d": _family("nitro", _M5),
    "r5n": _family("nitro", _M5),
    "z1d": _family("nitro", "large xlarge 2xlarge 3xlarge 6xlarge 12xlarge"),
    "m6i": _family("nitro", _SIXTH),
    "c6i": _family("nitro", _SIXTH),
    "r6i": _family("nitro", _SIXTH),
}


def root_disk(instance_type: str) -> str:
    """The device the root EBS volume appears as, for `rancher.resize_device` (the type must be valid)."""
    return ROOT_DISK[FAMILIES[instance_type.split(".", 1)[0]].platform]


def instance_type_problem(instance_type: str) -> str | None:
    """Why RancherOS nodes cannot use this type, or None when they can."""
    family, _, size = instance_type.partition(".")
    known = FAMILIES.get(family)
    if known is None:
        return (
            f"{instance_type!r}: family {family!r} is not one RancherOS v1.5.8 (x86_64, Linux 4.14) is known to "
            f"boot on; use one of {', '.join(FAMILIES)}"
        )
    if size == "nano":
        return f"{instance_type!r} has 512 MiB of memory; RancherOS runs from a RAM disk, use micro or larger"
    if size.startswith("metal"):
        return f"{instance_type!r}: bare metal is not supported; use a virtualized size of {family}"
    if size not in known.sizes:
        return f"{instance_type!r} does not exist; {family} comes in {', '.join(_ordered(known.sizes))}"
    return None


def _ordered(sizes: frozenset[str]) -> list[str]:
    named = ["micro", "small", "medium", "large", "xlarge"]
    return sorted(sizes, key=lambda s: (named.index(s), 0) if s in named else (len(named), int(s[:-6])))
