"""Shared fixtures: one recorded run of the whole program per stack, reused by every test module."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from functools import cache

import pytest

from offline.harness import StackRun, run_stack

STACKS = ("staging", "production")


@pytest.fixture(autouse=True)
def _event_loop() -> Iterator[None]:
    """Pulumi resources need a current loop in the main thread; relying on an implicit one warns."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield
    loop.close()
    asyncio.set_event_loop(None)


def pytest_unconfigure(config: pytest.Config) -> None:
    """The interpreter's last collection would walk the session's whole heap (every cached run) only to free it at
    exit: about half a second per process, each xdist worker included."""
    gc.freeze()


@cache
def recorded(stack: str) -> StackRun:
    return run_stack(stack)


@pytest.fixture(params=STACKS)
def stack_run(request: pytest.FixtureRequest) -> StackRun:
    return recorded(request.param)
