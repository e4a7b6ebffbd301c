"""How the offline plan's time grows with node groups, against a floor that only registers the same resources.

    .venv/bin/python bench/plan_scaling.py [--groups 6,50,100,200] [--runs 5]

For each group count N, a copy of the project gets a `Pulumi.production.yaml` with N node groups: production's
own six, then copies of its `services` group. The floor program registers exactly the resources the plan of that
stack records (same pulumi-aws classes, names, parents, options and input values, the same invoke and exports)
with the same dependencies (an input that came from other resources is an Output of theirs, a secret input a
secret) and does nothing else: no config validation, no rendering, no other Output plumbing. The bench checks
that before it times anything. A second copy of the project has the floor as its `__main__.py`.

Both are planned by the same command, `python -m offline.plan production` (the harness, the mocks, the artifacts
and the printed tree are the same; only the program differs), as whole processes with interpreter start and
imports, alternately, plan then floor, so each ratio is taken within a pair while the machine's speed drifts.
The table shows medians: wall seconds, CPU seconds (user + system, as the kernel accounts the finished child)
and the median of the pairs' ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from offline.harness import StackRun, run_stack  # noqa: E402 (the project is not installed, it is on the path)
from offline.program_copy import copy_program  # noqa: E402

STACK = "production"
TEMPLATE_GROUP = "services"

# The floor: every resource of floor.json with its typed class, in an order that creates parents and dependencies
# first. Inputs are the recorded wire values: top-level names are translated to the class's Python parameters,
# nested objects keep their wire names, which the SDK passes through unchanged. An input that depended on other
# resources waits for them, so the engine gets the same dependencies.
FLOOR_PROGRAM = """
import functools
import importlib
import inspect
import json
import re
from pathlib import Path

import pulumi
from pulumi.runtime import invoke

floor = json.loads((Path(__file__).parent / "floor.json").read_text())
created = {}


def typed_class(type_):
    package, module, kind = type_.split(":")
    return getattr(importlib.import_module(f"pulumi_{package}.{module.split('/')[0]}"), kind)


@functools.cache
def parameters(cls):
    return frozenset(inspect.signature(cls._internal_init).parameters)


def python_name(cls, wire):
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", wire).lower()
    return snake if snake in parameters(cls) else wire


def options(resource):
    opts = resource["options"]
    return pulumi.ResourceOptions(
        parent=created.get(resource["parent"]),
        depends_on=[create(by_urn[urn]) for urn in opts.get("dependsOn", [])],
        protect=opts.get("protect"),
        retain_on_delete=opts.get("retainOnDelete"),
        ignore_changes=opts.get("ignoreChanges"),
        delete_before_replace=opts.get("deleteBeforeReplace"),
        replace_on_changes=opts.get("replaceOnChanges"),
        additional_secret_outputs=opts.get("additionalSecretOutputs"),
    )


def value_of(resource, key):
    recorded = resource["inputs"][key]
    sources = [create(by_urn[urn]).urn for urn in resource["inputDependencies"].get(key, [])]
    value = pulumi.Output.all(*sources).apply(lambda _: recorded) if sources else recorded
    return pulumi.Output.secret(value) if key in resource["secretInputs"] else value


def create(resource):
    urn = resource["urn"]
    if urn in created:
        return created[urn]
    if resource["parent"] in by_urn:
        create(by_urn[resource["parent"]])
    opts = options(resource)
    if resource["custom"]:
        cls = typed_class(resource["type"])
        inputs = {python_name(cls, key): value_of(resource, key) for key in resource["inputs"]}
        created[urn] = cls(resource["name"], opts=opts, **inputs)
    else:
        created[urn] = pulumi.ComponentResource(resource["type"], resource["name"], None, opts)
        created[urn].register_outputs({})
    return created[urn]


by_urn = {r["urn"]: r for r in floor["resources"]}
for token, args in floor["invokes"]:
    invoke(token, args)
for resource in floor["resources"]:
    create(resource)
for key, value in floor["exports"].items():
    pulumi.export(key, value)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", default="6,50,100,200", help="node-group counts, comma-separated")
    parser.add_argument("--runs", type=int, default=5, help="timed pairs per group count (after one warm-up pair)")
    options = parser.parse_args()
    counts = [int(n) for n in options.groups.split(",")]
    print(f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, {options.runs} pairs per row (medians)\n")
    print(f"{'groups':>6} {'resources':>9} | {'plan wall':>9} {'floor wall':>10} {'ratio':>6} | "
          f"{'plan cpu':>8} {'floor cpu':>9} {'ratio':>6}")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="plan-scaling-") as scratch:
        for count in counts:
            row = _bench(Path(scratch) / str(count), count, options.runs)
            print(row, flush=True)
    return 0


def _bench(where: Path, count: int, runs: int) -> str:
    project, floor = _project(where / "project", count), where / "floor"
    resources = _write_floor(floor, project, run_stack(STACK, project_dir=project))
    plan = [sys.executable, "-m", "offline.plan", STACK, "--out", str(where / "plan")]
    floor_plan = [sys.executable, "-m", "offline.plan", STACK, "--out", str(where / "floor-plan")]
    _timed(plan, project), _timed(floor_plan, floor)  # warm-up: the page cache, .pyc files, the artifact folders
    pairs = [(_timed(plan, project), _timed(floor_plan, floor)) for _ in range(runs)]
    wall = [(a[0], b[0]) for a, b in pairs]
    cpu = [(a[1], b[1]) for a, b in pairs]
    return f"{count:>6} {resources:>9} | {_columns(wall, 9, 10)} | {_columns(cpu, 8, 9)}"


def _columns(pairs: list[tuple[float, float]], width_a: int, width_b: int) -> str:
    a = statistics.median(p[0] for p in pairs)
    b = statistics.median(p[1] for p in pairs)
    ratio = statistics.median(p[0] / p[1] for p in pairs)
    return f"{a:>{width_a - 2}.2f} s {b:>{width_b - 2}.2f} s {ratio:>5.2f}x"


def _project(project: Path, count: int) -> Path:
    copy_program(project)
    stack_file = project / f"Pulumi.{STACK}.yaml"
    document = yaml.safe_load(stack_file.read_text())
    groups = document["config"]["swarm-cluster:nodeGroups"]
    template = next(g for g in groups if g["name"] == TEMPLATE_GROUP)
    for i in range(len(groups), count):
        groups.append({**template, "name": f"extra{i:03d}", "role": f"extra{i:03d}"})
    del groups[count:]
    stack_file.write_text(yaml.safe_dump(document, sort_keys=False))
    return project


def _write_floor(floor: Path, project: Path, run: StackRun) -> int:
    """The project with the floor as its program, so `offline.plan` runs it with everything else the same."""
    shutil.copytree(project, floor, ignore=shutil.ignore_patterns("__pycache__"))
    (floor / "__main__.py").write_text(FLOOR_PROGRAM)
    document = {
        "resources": [
            {
                "urn": r.urn,
                "type": r.type,
                "name": r.name,
                "parent": r.parent,
                "custom": r.custom,
                "inputs": r.inputs,
                "options": r.options,
                "secretInputs": r.secret_inputs,
                "inputDependencies": r.input_dependencies,
            }
            for r in run.resources
        ],
        "invokes": run.invokes,
        "exports": run.exports,
    }
    (floor / "floor.json").write_text(json.dumps(document))
    _check_floor(run, run_stack(STACK, project_dir=floor))
    return len(run.resources)


def _check_floor(plan: StackRun, floor: StackRun) -> None:
    """The floor must declare what the plan declares, or the ratio compares different work."""

    def declared(run: StackRun) -> list[tuple[Any, ...]]:
        return [
            (
                r.type,
                r.name,
                r.parent,
                r.secret_inputs,
                r.depends_on,
                _text(_own(r.options)),
                _text(r.inputs),
                _text(r.input_dependencies),
            )
            for r in run.resources
        ]

    mismatched = [(a, b) for a, b in zip(declared(plan), declared(floor), strict=True) if a != b]
    if mismatched or len(plan.resources) != len(floor.resources) or plan.invokes != floor.invokes:
        raise SystemExit(f"the floor declares something else than the plan: {mismatched[:1]}")


def _text(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _own(options: dict[str, Any]) -> dict[str, Any]:
    """What the program chose; the floor's parents and dependencies are other objects of the same URNs.

    A class that marks outputs secret itself (aws.ssm.Parameter's `value`) adds them again to the recorded list
    the floor passes back: the engine reads the list as a set, so the comparison does too.
    """
    own = {k: v for k, v in options.items() if k != "aliases" or not re.search(r"parentUrn", json.dumps(v))}
    if "additionalSecretOutputs" in own:
        own["additionalSecretOutputs"] = sorted(set(own["additionalSecretOutputs"]))
    return own


def _timed(command: list[str], cwd: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one whole process, from the kernel's accounting of the reaped child.

    Bytecode is cached (beside the copies' sources) even where PYTHONDONTWRITEBYTECODE is set, as `dev.py plan`
    caches it: the warm-up pair compiles, the timed pairs measure what a user's second plan costs.
    """
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")}
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        assert child.stderr is not None
        raise SystemExit(f"{' '.join(command)} failed:\n{child.stderr.read().decode()}")
    return wall, usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    sys.exit(main())
