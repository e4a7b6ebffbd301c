"""Offline plan: run the real program for one stack against Pulumi's mocks and show what it declares.

    python -m offline.plan staging [--json] [--out DIR]

Exit status: 0 planned, 2 the stack configuration is invalid, 1 the program failed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import pulumi

from offline.artifacts import ArtifactFolderError, write_artifacts
from offline.harness import RecordedResource, StackRun, run_stack
from offline.stack_files import PROJECT_ROOT, StackFileError, esc_imports, project_name
from offline.summary import summarize

OFFLINE_NOTICE = (
    "OFFLINE PLAN: the real program ran in-process against Pulumi's mocks. No cloud state was read, so\n"
    "this is every resource the program declares, not a diff, and AWS has checked nothing. Run\n"
    "`pulumi preview --stack {stack}` for the real preview."
)


def main(argv: list[str] | None = None) -> int:
    options = _parser().parse_args(argv)
    out = options.out or PROJECT_ROOT / "build" / "plan" / options.stack
    started = time.perf_counter()
    try:
        if esc := esc_imports(options.stack):
            print(f"note: {esc.notice()}", file=sys.stderr)
        run = run_stack(options.stack)
    except (pulumi.RunError, StackFileError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        written = write_artifacts(run, out, owned=options.out is None)
    except ArtifactFolderError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if options.json:
        print(json.dumps(_document(run), indent=2, sort_keys=True, default=str))
    else:
        print(OFFLINE_NOTICE.format(stack=options.stack) + "\n")
        _print_tree(run)
        _print_exports(run)
        print(f"\nRendered artifacts ({len(written)} files) in {_shown(out)}")
        print(f"Planned in {time.perf_counter() - started:.2f}s")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m offline.plan", description=__doc__.splitlines()[0])
    parser.add_argument("stack", help="stack name: the X of Pulumi.X.yaml")
    parser.add_argument("--json", action="store_true", help="print every resource with all its inputs as JSON")
    parser.add_argument("--out", type=Path, help="folder for rendered artifacts (default build/plan/<stack>)")
    return parser


def _print_tree(run: StackRun) -> None:
    stack_name = f"{project_name()}-{run.stack}"
    rows = [("pulumi:pulumi:Stack", stack_name, "", "")]
    urns = {r.urn for r in run.resources}
    roots = [r for r in run.resources if r.parent not in urns]
    for i, root in enumerate(roots):
        rows += _rows(run, root, "", last=i == len(roots) - 1)
    width_type = max(len(prefix + type_) for type_, _, prefix, _ in rows)
    width_name = max(len(name) for _, name, _, _ in rows)
    print(f"Offline plan of stack {run.stack}: {len(run.resources)} resources\n")
    print(f"     {'Type':<{width_type}}  {'Name':<{width_name}}  Key inputs")
    for type_, name, prefix, info in rows:
        print(f" +   {prefix + type_:<{width_type}}  {name:<{width_name}}  {info}".rstrip())


def _rows(run: StackRun, resource: RecordedResource, indent: str, last: bool) -> list[tuple[str, str, str, str]]:
    branch = "└─ " if last else "├─ "
    rows = [(_short_type(resource.type), resource.name, indent + branch, summarize(resource))]
    children = run.children(resource)
    for i, child in enumerate(children):
        rows += _rows(run, child, indent + ("   " if last else "│  "), last=i == len(children) - 1)
    return rows


def _short_type(type_: str) -> str:
    """`aws:ec2/securityGroup:SecurityGroup` is shown as `aws:ec2:SecurityGroup`, as `pulumi preview` does."""
    package, module, kind = type_.split(":")
    return f"{package}:{module.split('/')[0]}:{kind}"


def _print_exports(run: StackRun) -> None:
    print("\nOutputs:")
    for key, value in sorted(run.exports.items()):
        text = json.dumps(_whole_numbers(value), indent=4, sort_keys=True).replace("\n", "\n    ")
        print(f"    {key}: {text}")


def _whole_numbers(value: Any) -> Any:
    """The mocks carry every number as a float; a version shown as 1.0 would read as a different value."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _whole_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole_numbers(v) for v in value]
    return value


def _document(run: StackRun) -> dict[str, object]:
    names = {r.urn: f"{r.type}::{r.name}" for r in run.resources}
    return {
        "stack": run.stack,
        "offline": True,
        "resources": [
            {
                "type": r.type,
                "name": r.name,
                "parent": names.get(r.parent or ""),
                "protect": r.protect,
                "retainOnDelete": r.retain_on_delete,
                "inputs": r.inputs,
            }
            for r in run.resources
        ],
        "outputs": run.exports,
    }


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())
