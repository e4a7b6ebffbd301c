"""How an instance refresh replaces one group's instances and roughly how long it takes.

One formula for the offline plan's rollout summary and for the deploy's wait deadline
(`.github/scripts/wait-for-instance-refreshes.sh` runs this module on the runner: standard library only).

    python3 -m offline.refresh_time INSTANCES MIN_HEALTHY_PCT MAX_HEALTHY_PCT WARMUP_S DRAIN_S   -> seconds
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass

# Launch to InService: EC2 starts the instance, RancherOS boots and pulls its images, status checks pass.
BOOT_SECONDS = 180


@dataclass(frozen=True)
class RefreshShape:
    instances: int
    min_healthy: int  # percent of the group kept in service
    max_healthy: int  # percent the group may grow to while replacing
    warmup_seconds: int
    drain_seconds: int = 0  # the longest a termination lifecycle hook holds each replaced instance

    @property
    def launch_first(self) -> bool:
        """Room above 100% lets Auto Scaling start replacements before it terminates anything."""
        return self.max_healthy > 100

    @property
    def batch(self) -> int:
        """Instances replaced at once; Auto Scaling always replaces at least one."""
        if self.launch_first:
            return max(1, self.instances * (self.max_healthy - 100) // 100)
        return max(1, self.instances - math.ceil(self.instances * self.min_healthy / 100))

    @property
    def batches(self) -> int:
        return math.ceil(self.instances / self.batch) if self.instances else 0

    @property
    def seconds(self) -> int:
        return self.batches * (BOOT_SECONDS + self.warmup_seconds + self.drain_seconds)

    @property
    def outage(self) -> bool:
        """Every instance is out of service at once: stopped before any replacement starts."""
        return not self.launch_first and self.batch >= self.instances

    def how(self) -> str:
        if self.launch_first:
            order = "new instances in service before old ones stop"
        elif self.outage:
            order = "every instance stopped before its replacement starts: an outage"
        else:
            order = f"keeps {self.min_healthy}% in service"
        size = "one at a time" if self.batch == 1 else f"{self.batch} at a time"
        return f"{size}, {order}"


def main(argv: list[str]) -> int:
    instances, low, high, warmup, drain = (int(a) for a in argv)
    print(RefreshShape(instances, low, high, warmup, drain).seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
