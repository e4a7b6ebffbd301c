"""Offline plan against a git ref: what a change does to the stack and to its running nodes.

    python3 dev.py plan STACK --against REF [--json]

Runs the program for STACK twice, offline: as committed at REF (exported with `git archive` into a temporary
folder, run in its own process with its own code) and, meanwhile, as it is in the working tree (in this process,
whose code is the working tree's). Prints the resources created, deleted, replaced and updated (with the changed
inputs), the groups whose instances roll, and loud warnings for dangerous changes. Exit status: 0 compared,
2 the working tree's stack file is invalid or REF is unknown, 1 a program failed.
"""

from __future__ import annotations

import binascii
import difflib
import json
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pulumi

from offline.diff import diff_runs
from offline.harness import run_stack
from offline.rollout import rollout
from offline.snapshot import record as snapshot_record
from offline.stack_files import PROJECT_ROOT, StackFileError, esc_imports
from offline.summary import whole_numbers
from rendering.yaml_text import decode_user_data

SNAPSHOT = Path(__file__).resolve().parent / "snapshot.py"
SYMBOLS = {"create": "+", "delete": "-", "replace": "+-", "update": "~"}
SHOWN = 120  # characters of one input value in the text report
USER_DATA_LINES = 20  # changed lines of decoded user-data shown per launch template


class CompareError(Exception):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def against(stack: str, ref: str, *, as_json: bool, project_dir: Path = PROJECT_ROOT) -> int:
    try:
        if esc := esc_imports(stack, project_dir):
            print(f"note: {esc.notice()}", file=sys.stderr)
        report = compare(stack, ref, project_dir)
    except CompareError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.status
    except StackFileError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2, sort_keys=True) if as_json else render(report))
    return 0


def compare(stack: str, ref: str, project: Path = PROJECT_ROOT) -> dict[str, Any]:
    commit = _git(project, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").strip()
    with tempfile.TemporaryDirectory(prefix="plan-against-") as folder:
        base_dir = Path(folder)
        archive = subprocess.run(["git", "archive", commit], cwd=project, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(base_dir)], input=archive, check=True)
        base_new = not (base_dir / f"Pulumi.{stack}.yaml").exists()
        process = None if base_new else _start(base_dir, stack)
        try:
            head = working_tree(stack, project)
            base = [] if process is None else _finish(process, f"the program at {ref} ({commit[:12]}) for {stack}")
        finally:
            if process is not None and process.poll() is None:  # a failed working tree: not left running
                process.kill()
                process.communicate()
    return report(stack, {"ref": ref, "commit": commit, "stackIsNew": base_new}, base, head)


def working_tree(stack: str, project: Path) -> list[dict[str, Any]]:
    """What the working tree's program declares, as the base side's snapshot records it."""
    try:
        run = run_stack(stack, project_dir=project)
    except (pulumi.RunError, StackFileError) as error:
        message = f"the working tree's program for {stack} rejects its stack configuration:\n{error}"
        raise CompareError(message, 2) from None
    return [snapshot_record(r) for r in run.resources]


def report(
    stack: str, against: dict[str, Any], base: list[dict[str, Any]], head: list[dict[str, Any]]
) -> dict[str, Any]:
    """The comparison of two snapshots; `against` names the base: its ref, commit and whether the stack is new."""
    diffs = diff_runs(base, head)
    plan = rollout(head, diffs)
    actions = [d.action for d in diffs]
    return {
        "stack": stack,
        "against": against,
        "offline": True,
        "summary": {
            **{action: actions.count(action) for action in SYMBOLS},
            "unchanged": len(head) - sum(a != "delete" for a in actions),
        },
        "resources": [asdict(d) | {"replacedBy": d.replaced_by} for d in diffs],
        "rollout": [roll.as_data() for roll in plan.rolling],
        "warnings": plan.warnings,
    }


def _git(project: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=project, capture_output=True, text=True)
    if result.returncode != 0:
        raise CompareError(f"{args[-1].removesuffix('^{commit}')} is not a commit of this repository", 2)
    return result.stdout


def _start(directory: Path, stack: str) -> subprocess.Popen[str]:
    command = [sys.executable, str(SNAPSHOT), str(directory), stack]
    return subprocess.Popen(command, cwd=directory, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(process: subprocess.Popen[str], what: str) -> list[dict[str, Any]]:
    stdout, stderr = process.communicate()
    if process.returncode == 2:
        raise CompareError(f"{what} rejects its stack configuration:\n{stderr.strip()}", 1)
    if process.returncode != 0:
        raise CompareError(f"{what} failed:\n{stderr.strip()}", 1)
    resources: list[dict[str, Any]] = json.loads(stdout)["resources"]
    return resources


def render(report: dict[str, Any]) -> str:
    against, summary = report["against"], report["summary"]
    lines = [
        f"OFFLINE PLAN of stack {report['stack']}: the working tree against {against['ref']} "
        f"({against['commit'][:12]}). Both ran offline against Pulumi's mocks: AWS state was not read, so run "
        "`pulumi preview --diff` for the real diff.",
        "",
        "Resources: " + ", ".join(f"{summary[a]} to {a}" for a in SYMBOLS) + f", {summary['unchanged']} unchanged",
    ]
    for resource in report["resources"]:
        lines += _resource_lines(resource)
    lines += ["", "Rollout on the next `pulumi up`:"]
    lines += [_roll_line(roll) for roll in report["rollout"]] or ["  no instance is replaced"]
    if report["warnings"]:
        lines += ["", "WARNINGS:"] + [f"  !! {warning}" for warning in report["warnings"]]
    return "\n".join(lines)


def _resource_lines(resource: dict[str, Any]) -> list[str]:
    kind = resource["type"].split(":")[-1]
    extra = " [protected]" if resource["protected"] else ""
    lines = [f"  {SYMBOLS[resource['action']]:<2} {kind:<28} {resource['name']}{extra}"]
    for change in resource["changes"]:
        note = "  (forces replacement)" if change["forces_replacement"] else ""
        if change["path"] == "userData" and (text := _user_data_diff(change["before"], change["after"])):
            lines += [f"       userData (decoded):{note}", *text]
        else:
            lines.append(f"       {change['path']}: {_shown(change['before'])} => {_shown(change['after'])}{note}")
    if resource["because_of"]:
        lines.append(f"       because {', '.join(resource['because_of'])} is replaced or deleted")
    return lines


def _roll_line(roll: dict[str, Any]) -> str:
    low, high = (round(s / 60) for s in roll["estimatedSeconds"])
    size = (
        f"{roll['instances']}"
        if roll["instances"] == roll["maxInstances"]
        else f"{roll['instances']}-{roll['maxInstances']}"
    )
    minutes = f"~{low} min" if low == high else f"~{low}-{high} min"
    drain = f", drain up to {roll['drainSeconds']}s each" if roll["drainSeconds"] else ""
    return (
        f"  {roll['group']} ({roll['component']}): {size} instance(s) replaced {roll['how']}; "
        f"warmup {roll['instanceWarmupSeconds']}s{drain}; {minutes}\n       because: {'; '.join(roll['reasons'])}"
    )


def _shown(value: Any) -> str:
    text = json.dumps(whole_numbers(value), sort_keys=True)
    return text if len(text) <= SHOWN else f"{text[:SHOWN]}... ({len(text)} characters)"


def _user_data_diff(before: Any, after: Any) -> list[str]:
    """The changed lines of two base64 user-data documents; none for secret digests."""
    try:
        old, new = (decode_user_data(v).splitlines() for v in (before, after))
    except (TypeError, ValueError, binascii.Error):
        return []
    changed = [line for line in difflib.unified_diff(old, new, lineterm="", n=0) if line[:1] in "+-"][2:]
    more = (
        [f"         ... {len(changed) - USER_DATA_LINES} more changed lines"] if len(changed) > USER_DATA_LINES else []
    )
    return [f"         {line[:SHOWN]}" for line in changed[:USER_DATA_LINES]] + more
