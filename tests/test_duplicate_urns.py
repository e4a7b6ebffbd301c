"""The harness refuses what the engine refuses: two resources with one URN (the mocks accept them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from offline.harness import DuplicateUrn, run_stack

PROGRAM = """
import pulumi

class C(pulumi.ComponentResource):
    def __init__(self, type_, name, parent=None):
        super().__init__(type_, name, None, pulumi.ResourceOptions(parent=parent))

def leaf_under(outer_type, outer_name):
    middle = C("test:index:Middle", outer_name + "-m", C(outer_type, outer_name))
    C("test:index:Leaf", "leaf", middle)

leaf_under({first!r}, "a")
leaf_under({second!r}, "b")
"""


def _project(tmp_path: Path, first: str, second: str) -> Path:
    (tmp_path / "Pulumi.yaml").write_text("name: dup\nruntime: python\n")
    (tmp_path / "Pulumi.dev.yaml").write_text("config: {}\n")
    (tmp_path / "__main__.py").write_text(PROGRAM.format(first=first, second=second))
    return tmp_path


def test_same_name_under_same_types_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DuplicateUrn, match=r"test:index:Outer\$test:index:Middle\$test:index:Leaf::leaf"):
        run_stack("dev", project_dir=_project(tmp_path, "test:index:Outer", "test:index:Outer"))


def test_same_name_under_different_ancestors_is_accepted(tmp_path: Path) -> None:
    """The mocks give both leaves one URN (they keep only the parent's type); the engine does not."""
    run = run_stack("dev", project_dir=_project(tmp_path, "test:index:Outer", "test:index:Other"))
    assert [r.name for r in run.resources].count("leaf") == 2
