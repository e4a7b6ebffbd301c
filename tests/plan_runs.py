"""The offline plan as tests run it: in this process, against a copy of the project whose stack files a test edits.

In-process saves the interpreter start and the imports of a new process (about half of a plan); a test whose point
is the process itself (exit status, nothing on stderr) starts one with `sys.executable -m offline.plan`. Runs of an
edited config that several test modules look at are made once per session here, as `tests.conftest.recorded` makes
the stacks' own.
"""

from __future__ import annotations

import io
import json
import subprocess
from contextlib import redirect_stderr, redirect_stdout
from functools import cache
from pathlib import Path

from offline import plan
from offline.harness import StackRun, run_stack
from offline.stack_files import stack_config_map

COST_TAGS = {"CostCenter": "finance", "Owner": "platform-team"}  # one changed, one added


def plan_in_process(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`dev.py plan ARGS` of `project`, with what it printed; the modules are this process's own."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        status = plan.main(list(args), project_dir=project)
    return subprocess.CompletedProcess(["dev.py", "plan", *args], status, out.getvalue(), err.getvalue())


@cache
def retagged(stack: str) -> StackRun:
    """The stack's program after the day-2 edit that must replace no instance: its cost tags changed."""
    values, secrets = stack_config_map(stack)
    tags = json.loads(values["swarm-cluster:tags"])
    values["swarm-cluster:tags"] = json.dumps({**tags, **COST_TAGS})
    return run_stack(stack, config=values, secret_keys=secrets)
