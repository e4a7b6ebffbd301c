"""Shared fixtures: one recorded run of the whole program per stack, reused by every test module and, under
pytest-xdist, by every worker."""

from __future__ import annotations

import asyncio
import fcntl
import gc
import pickle
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # the xdist controller loads this file too, and runs no program
    from offline.harness import StackRun

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


_SHARED: dict[str, Path] = {}  # "runs": the folder this session's xdist workers share, when there are workers


def pytest_configure(config: pytest.Config) -> None:
    # Tests allocate in bursts that die young (parsed YAML, hypothesis examples, recorded requests): at Python's
    # default of a young collection every 700 allocations the collector took 1.2-1.6 s of the workers' CPU, at
    # 50,000 about 0.3 s; the suite's largest process grew from 233 to 247 MB.
    gc.set_threshold(50_000, 20, 20)
    basetemp = getattr(config.option, "basetemp", None)
    if hasattr(config, "workerinput") and basetemp:  # a local worker's folder is in the controller's, cleaned up
        _SHARED["runs"] = Path(basetemp).parent


@cache
def recorded(stack: str) -> StackRun:
    """The session's one run of `stack`: the first worker to ask runs it and leaves it for the others, as a serial
    session reuses it (each worker ran both stacks for itself: a second of CPU per worker)."""
    from offline.harness import run_stack

    folder = _SHARED.get("runs")
    if folder is None:
        return run_stack(stack)
    saved = folder / f"recorded-{stack}.pickle"
    with (folder / f"recorded-{stack}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the others wait for the one running it; released when the file closes
        if saved.exists():
            run: StackRun = pickle.loads(saved.read_bytes())
            return run
        run = run_stack(stack)
        partial = saved.with_suffix(".partial")  # a worker that dies while writing leaves no run to read
        partial.write_bytes(pickle.dumps(run, pickle.HIGHEST_PROTOCOL))
        partial.replace(saved)
        return run


@pytest.fixture(params=STACKS)
def stack_run(request: pytest.FixtureRequest) -> StackRun:
    return recorded(request.param)
