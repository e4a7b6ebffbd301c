"""A copy of the Pulumi program elsewhere: tests and the benchmark run edited copies of it, never the checkout."""

from __future__ import annotations

import shutil
from pathlib import Path

from offline.stack_files import PROJECT_ROOT

PROGRAM_FILES = ("Pulumi.yaml", "Pulumi.staging.yaml", "Pulumi.production.yaml", "__main__.py")
PROGRAM_DIRS = ("components", "stack_config", "rendering", "offline", "node_agents")


def copy_program(destination: Path) -> Path:
    """`destination` holding the program's files as they are in this checkout (bytecode caches left out)."""
    destination.mkdir(parents=True, exist_ok=True)
    for name in PROGRAM_FILES:
        shutil.copy(PROJECT_ROOT / name, destination / name)
    for name in PROGRAM_DIRS:
        shutil.copytree(PROJECT_ROOT / name, destination / name, ignore=shutil.ignore_patterns("__pycache__"))
    return destination
