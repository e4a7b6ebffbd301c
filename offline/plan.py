"""Offline plan: run the real program for one stack against Pulumi's mocks and show what it declares.

    python3 dev.py plan [STACK | --stack STACK | -s STACK] [--json] [--out DIR | --against REF]

Exit status: 0 planned, 2 the stack configuration is invalid, 1 the program failed, 141 the reader of the output
stopped early (`| head`), as for commands that SIGPIPE ends.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path
from typing import Any

import pulumi

from offline.artifacts import ArtifactFolderError, check_folder, write_artifacts
from offline.command import as_command
from offline.harness import RecordedResource, StackRun, run_stack
from offline.stack_files import PROJECT_ROOT, StackFileError, esc_imports, project_name
from offline.summary import summarize, whole_numbers

OFFLINE_NOTICE = (
    "OFFLINE PLAN: the real program ran in-process against Pulumi's mocks. No cloud state was read, so\n"
    "this is every resource the program declares, not a diff, and AWS has checked nothing. Run\n"
    "`pulumi preview --stack {stack}` for the real preview."
)


def main(argv: list[str] | None = None, project_dir: Path = PROJECT_ROOT) -> int:
    options = parse_options(argv)
    if options.against:
        from offline.compare import against  # imports this module: loaded only when asked for

        return against(options.stack, options.against, as_json=options.json, project_dir=project_dir)
    out = options.out or project_dir / "build" / "plan" / options.stack
    owned = options.out is None
    started = time.perf_counter()
    try:
        check_folder(out, owned=owned)  # before the run: a wrong --out fails at once
        if esc := esc_imports(options.stack, project_dir):
            print(f"note: {esc.notice()}", file=sys.stderr)
        run = run_stack(options.stack, project_dir=project_dir)
        written = write_artifacts(run, out, owned=owned)
    except (pulumi.RunError, StackFileError, ArtifactFolderError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if options.json:
        print(document(run))
    else:
        report(run, written, out)
        print(f"Planned in {time.perf_counter() - started:.2f}s")
    return 0


def report(run: StackRun, written: list[Path], out: Path) -> None:
    """What `dev.py plan` prints for people: the notice, the resource tree, the outputs, where artifacts went."""
    print(OFFLINE_NOTICE.format(stack=run.stack) + "\n")
    _print_tree(run)
    _print_exports(run)
    print(f"\nRendered artifacts ({len(written)} files) in {_shown(out)}")


def document(run: StackRun) -> str:
    """What `dev.py plan --json` prints."""
    return json.dumps(_document(run), indent=2, sort_keys=True, default=str)


DEFAULT_STACK = "staging"


def parse_options(argv: list[str] | None) -> argparse.Namespace:
    parser = _parser()
    options = parser.parse_args(argv)
    if options.stack and options.stack_option and options.stack != options.stack_option:
        parser.error(f"two stacks given: {options.stack} and --stack {options.stack_option}")
    options.stack = options.stack or options.stack_option or DEFAULT_STACK
    if options.against and options.out:
        parser.error("--out writes the artifacts of one plan; --against compares two and writes none")
    return options


def _parser() -> argparse.ArgumentParser:
    # `dev.py plan` is how users run this module (its first line names it); argparse would say `plan.py`.
    parser = argparse.ArgumentParser(prog="python3 dev.py plan", description=__doc__.splitlines()[0])
    stack_help = f"stack name: the X of Pulumi.X.yaml (default: {DEFAULT_STACK})"
    parser.add_argument("stack", nargs="?", metavar="STACK", help=stack_help)
    parser.add_argument("-s", "--stack", dest="stack_option", metavar="STACK", help="the same, as Pulumi spells it")
    parser.add_argument(
        "--json", action="store_true", help="print every resource with its parent, options and inputs as JSON"
    )
    parser.add_argument(
        "--out", type=Path, metavar="DIR", help="folder for rendered artifacts (default build/plan/<stack>)"
    )
    parser.add_argument(
        "--against",
        metavar="REF",
        help="compare with the program at git ref REF (e.g. main): changed resources, groups that roll, warnings",
    )
    return parser


def _print_tree(run: StackRun) -> None:
    stack_name = f"{project_name()}-{run.stack}"
    rows = [("pulumi:pulumi:Stack", stack_name, "", "")]
    urns = {r.urn for r in run.resources}
    roots = [r for r in run.resources if r.parent not in urns]
    children = run.children()
    for i, root in enumerate(roots):
        rows += _rows(children, root, "", last=i == len(roots) - 1)
    width_type = max(len(prefix + type_) for type_, _, prefix, _ in rows)
    width_name = max(len(name) for _, name, _, _ in rows)
    print(f"Offline plan of stack {run.stack}: {len(run.resources)} resources\n")
    print(f"     {'Type':<{width_type}}  {'Name':<{width_name}}  Key inputs")
    for type_, name, prefix, info in rows:
        print(f" +   {prefix + type_:<{width_type}}  {name:<{width_name}}  {info}".rstrip())


def _rows(
    children: dict[str, list[RecordedResource]], resource: RecordedResource, indent: str, last: bool
) -> list[tuple[str, str, str, str]]:
    branch = "└─ " if last else "├─ "
    rows = [(_short_type(resource.type), resource.name, indent + branch, summarize(resource))]
    own = children.get(resource.urn, [])
    for i, child in enumerate(own):
        rows += _rows(children, child, indent + ("   " if last else "│  "), last=i == len(own) - 1)
    return rows


def _short_type(type_: str) -> str:
    """`aws:ec2/securityGroup:SecurityGroup` is shown as `aws:ec2:SecurityGroup`, as `pulumi preview` does."""
    package, module, kind = type_.split(":")
    return f"{package}:{module.split('/')[0]}:{kind}"


def _print_exports(run: StackRun) -> None:
    print("\nOutputs:")
    for key, value in sorted(run.exports.items()):
        text = json.dumps(whole_numbers(value), indent=4, sort_keys=True).replace("\n", "\n    ")
        print(f"    {key}: {text}")


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
                "options": _named_dependencies(r.options, names),
                "inputs": r.inputs,
            }
            for r in run.resources
        ],
        "outputs": run.exports,
    }


def _named_dependencies(options: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """URNs repeat project and stack and are hard to read; `type::name` is unique in a run, as the parent is."""
    if "dependsOn" not in options:
        return options
    return {**options, "dependsOn": [names.get(urn, urn) for urn in options["dependsOn"]]}


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    status = as_command(main)
    gc.freeze()  # the interpreter's last collection would walk the run's whole heap only to free it at exit
    sys.exit(status)
