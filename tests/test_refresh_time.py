"""How an instance refresh proceeds for a group's refresh preferences, and the deadline arithmetic."""

from __future__ import annotations

import subprocess
import sys

import pytest

from offline.refresh_time import BOOT_SECONDS, RefreshShape


@pytest.mark.parametrize(
    ("shape", "batch", "batches", "how"),
    [
        # A lone Consul server or manager: stopped first (0-100%).
        (RefreshShape(1, 0, 100, 300), 1, 1, "one at a time, every instance stopped before its replacement starts"),
        # A single worker without headroom above 100%: the same outage, whatever minHealthyPercentage says.
        (RefreshShape(1, 90, 100, 300), 1, 1, "one at a time, every instance stopped before its replacement starts"),
        (RefreshShape(10, 90, 100, 300), 1, 10, "one at a time, keeps 90% in service"),
        (RefreshShape(10, 50, 100, 300), 5, 2, "5 at a time, keeps 50% in service"),
        # Quorum groups (100-110%) and drained workers: launch first, one at a time.
        (RefreshShape(3, 100, 110, 300), 1, 3, "one at a time, new instances in service before old ones stop"),
        (RefreshShape(6, 90, 110, 300, 600), 1, 6, "one at a time, new instances in service before old ones stop"),
        # minHealthyPercentage 100: every replacement launched at once, then the old ones stop.
        (RefreshShape(4, 100, 200, 300), 4, 1, "4 at a time, new instances in service before old ones stop"),
    ],
)
def test_batches_follow_the_healthy_percentages(shape: RefreshShape, batch: int, batches: int, how: str) -> None:
    assert (shape.batch, shape.batches) == (batch, batches)
    assert shape.how().startswith(how)
    assert shape.seconds == batches * (BOOT_SECONDS + shape.warmup_seconds + shape.drain_seconds)


def test_an_empty_group_takes_no_time() -> None:
    assert RefreshShape(0, 90, 110, 300, 600).seconds == 0


def test_command_line_prints_seconds() -> None:
    command = [sys.executable, "-m", "offline.refresh_time", "6", "90", "110", "300", "600"]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    assert int(result.stdout) == 6 * (BOOT_SECONDS + 300 + 600)
