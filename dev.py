#!/usr/bin/env python3
"""Developer entry point: sets up `.venv` when it is missing or stale, then runs the command in it.

Needs only Python 3.11+ on the PATH; everything else is installed from the pinned requirements files.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PYTHON = VENV / "bin" / "python"
STAMP = VENV / ".requirements.sha256"
REQUIREMENTS = ("requirements.txt", "requirements-dev.txt", "constraints.txt")
HELP = ("-h", "--help", "help")
PLAN_HELP = "`python3 dev.py plan --help` lists every option of the plan."


@dataclass(frozen=True)
class Command:
    run: Callable[[list[str]], int]
    arguments: str
    summary: str


def main(argv: list[str]) -> int:
    if sys.version_info < (3, 11):  # noqa: UP036 (dev.py runs on whatever python3 the user has)
        print(f"dev.py needs Python 3.11 or newer; this is {sys.version.split()[0]}", file=sys.stderr)
        return 2
    if argv and argv[0] in HELP:
        print(usage())
        return 0
    if not argv or argv[0] not in COMMANDS:
        print(usage(), file=sys.stderr)
        return 2
    _ensure_venv()
    return COMMANDS[argv[0]].run(argv[1:])


def usage() -> str:
    width = max(len(f"{name} {command.arguments}") for name, command in COMMANDS.items())
    lines = [
        f"  python3 dev.py {f'{name} {command.arguments}':<{width}}  {command.summary}"
        for name, command in COMMANDS.items()
    ]
    return "\n".join(["usage: python3 dev.py COMMAND [ARGS...]", "", *lines, "", __doc__.strip(), PLAN_HELP])


def _ensure_venv() -> None:
    wanted = hashlib.sha256(b"".join((ROOT / name).read_bytes() for name in REQUIREMENTS)).hexdigest()
    if PYTHON.exists() and STAMP.exists() and STAMP.read_text() == wanted:
        return
    print("Setting up .venv from the pinned requirements (about a minute, once)...", file=sys.stderr)
    if not PYTHON.exists():
        venv.create(VENV, with_pip=True)
    pip = [str(PYTHON), "-m", "pip", "install", "-qq", "--disable-pip-version-check"]
    # pip compiles what it installs; under the same prefix, the first test run finds it compiled.
    subprocess.run([*pip, "-r", str(ROOT / "requirements-dev.txt")], check=True, cwd=ROOT, env=_environment())
    STAMP.write_text(wanted)


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_CONFIG")}
    # Bytecode is cached under .venv, never beside the sources, so it is written even where
    # PYTHONDONTWRITEBYTECODE keeps source trees clean: without it every test worker and every plan compiles the
    # project's modules (and rewrites the tests' asserts) again, about 2 s of CPU per test run.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.setdefault("PYTHONPYCACHEPREFIX", str(VENV / "pycache"))
    return env


def _in_venv(*args: str) -> int:
    return subprocess.run([str(PYTHON), *args], cwd=ROOT, env=_environment()).returncode


def plan(args: list[str]) -> int:
    return _in_venv("-m", "offline.plan", *args)


def _parallel() -> list[str]:
    """pytest-xdist options: one worker per core and one more, which runs tests while others wait (agents polling
    fakes, probes of dropped packets); in paired runs on 2 cores it was never slower than one worker per core, and
    3 s faster while the suite waited longer, for the extra worker's collection (about 1 s of CPU). Each test file
    runs whole on one worker, so a module-scoped fixture (namespaced network, fake services) is built once, not
    once per worker; that beat splitting files (`load`, `worksteal`). Later `-n`/`--dist` win:
    `python3 dev.py test -n 0` runs serially (pdb, prints)."""
    return ["-n", str((os.cpu_count() or 1) + 1), "--dist", "loadfile"]


def test(args: list[str]) -> int:
    checks = [
        ("ruff check", ["-m", "ruff", "check", "."]),
        ("ruff format --check", ["-m", "ruff", "format", "--check", "."]),
        ("mypy --strict", ["-m", "mypy"]),  # the paths are in pyproject.toml
        ("pytest", ["-m", "pytest", *_parallel(), *args]),
    ]
    failed = []
    for title, command in checks:
        print(f"== {title}", flush=True)
        if _in_venv(*command):
            failed.append(title)
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def _refused(command: str, args: list[str]) -> bool:
    """A command without arguments says so instead of ignoring them (`docs --check` would have rewritten files)."""
    if args:
        print(f"python3 dev.py {command} takes no arguments, not: {' '.join(args)}", file=sys.stderr)
    return bool(args)


def golden(args: list[str]) -> int:
    if _refused("golden", args):
        return 2
    for stack in ("staging", "production"):
        status = _in_venv("-m", "offline.plan", stack, "--out", str(ROOT / "tests" / "golden" / stack))
        if status:
            return status
    return 0


def docs(args: list[str]) -> int:
    return 2 if _refused("docs", args) else _in_venv("-m", "offline.config_docs")


# One row per command; the usage text is built from this table.
COMMANDS = {
    "plan": Command(
        plan,
        "[STACK | --stack STACK] [--json] [--out DIR | --against REF]",
        "offline plan of one stack (default: staging); with --against, what changes since a git ref",
    ),
    "test": Command(test, "[PYTEST ARGS...]", "lint, type check and the whole test suite"),
    "golden": Command(golden, "", "regenerate tests/golden from both stacks"),
    "docs": Command(docs, "", "regenerate the config reference in README.md and schemas/"),
}

if __name__ == "__main__":
    from offline.command import as_command  # standard library only: runs on the python3 that runs this file

    sys.exit(as_command(lambda: main(sys.argv[1:])))
