"""Whole-stack policy check: every stack, run offline through the real program, passes every CrossGuard policy.

Uses the shared `stack_run` fixture (tests/conftest.py: one recorded `offline.harness.run_stack` per stack). The
stack name is handed to the policies as the engine does (PULUMI_STACK), so the production-only rule applies to
production even where a group's tags would not say so.
"""

from __future__ import annotations

from offline.harness import StackRun
from tests.policy_check import violations


def test_stack_passes_every_policy(stack_run: StackRun) -> None:
    assert stack_run.resources, "the harness recorded no resources"
    assert violations(stack_run.resources, stack=stack_run.stack) == []
