"""Checks for any RancherOS `#cloud-config` user-data; each returns a list of problems (empty = fine).

Shell snippets are extracted as the shell will see them: RancherOS first replaces `$private_ipv4` and
friends with instance metadata in the whole text, and docker-compose interpolation (`$$` -> `$`,
`${VAR}` -> a value) applies to service definitions.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

# A copy of rancher/os config/schema.go (as shared/rancheros/ has it), so a bare clone can run the tests.
SCHEMA_PATH = Path(__file__).resolve().parent / "data" / "rancheros-cloud-config.schema.json"
SHELLCHECK = Path(sys.executable).parent / "shellcheck"
METADATA_EXAMPLES = {
    "$private_ipv4": "10.0.0.10",
    "$public_ipv4": "203.0.113.10",
    "$private_ipv6": "fd00::10",
    "$public_ipv6": "2001:db8::10",
}
# Images the RancherOS v1.5.8 AMI carries (os-base, os-console, ...); nothing else is there without a pull.
PRELOADED_IMAGE_PREFIX = "rancher/os-"
SHELLS = ("sh", "/bin/sh", "bash", "/bin/bash", "ash", "/bin/ash")
_COMPOSE_VARIABLE = re.compile(r"\$\$|\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*")


@cache
def _validator() -> jsonschema.Draft4Validator:
    return jsonschema.Draft4Validator(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))


@lru_cache(maxsize=256)
def parsed(text: str) -> Any:
    """Parsed once per text (every check of a host's user-data parses it): read-only. `yaml.safe_load`'s
    constructors on libyaml's parser, the same document at a twentieth of the pure-Python parser's time."""
    return yaml.load(text, Loader=yaml.CSafeLoader)


def schema_errors(text: str) -> list[str]:
    """First line, YAML syntax and the RancherOS schema (`ros config validate`)."""
    problems = []
    if text.split("\n", 1)[0] != "#cloud-config":
        problems.append("the first line is not exactly '#cloud-config'; RancherOS would ignore the user-data")
    try:
        document = parsed(text)
    except yaml.YAMLError as parse_error:
        return [*problems, f"not YAML: {parse_error}"]
    for error in sorted(_validator().iter_errors(document), key=lambda e: list(e.absolute_path)):
        where = ".".join(str(p) for p in error.absolute_path) or "<top>"
        problems.append(f"{where}: {error.message}")
    return problems


def duplicate_list_items(text: str) -> list[str]:
    """Repeated items in any list (the schema's lists of strings are uniqueItems)."""
    problems = []
    for path, items in _lists(parsed(text), ""):
        seen: list[Any] = []
        for item in items:
            if item in seen:
                problems.append(f"{path or '<top>'}: {item!r} appears more than once")
            else:
                seen.append(item)
    return problems


def _lists(node: Any, path: str) -> Iterator[tuple[str, list[Any]]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _lists(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        yield path, node
        for i, value in enumerate(node):
            yield from _lists(value, f"{path}[{i}]")


def shell_snippets(text: str) -> list[tuple[str, str]]:
    """(name, script) for every shell script or command the user-data makes RancherOS run."""
    for token, value in METADATA_EXAMPLES.items():
        text = text.replace(token, value)
    document = parsed(text) or {}
    snippets: list[tuple[str, str]] = []
    for entry in document.get("write_files") or []:
        content = entry.get("content") or ""
        if re.match(r"#!\s*\S*/(env\s+)?(ba|a)?sh\b", content):
            snippets.append((f"write_files {entry.get('path')}", content))
    for key in ("runcmd", "bootcmd"):
        for i, command in enumerate(document.get(key) or []):
            script = command if isinstance(command, str) else shlex.join(str(c) for c in command)
            snippets.append((f"{key}[{i}]", script))
    rancher = document.get("rancher") or {}
    network = rancher.get("network") or {}
    for key in ("pre_cmds", "post_cmds"):
        for i, command in enumerate(network.get(key) or []):
            wrapped = _sh_c(shlex.split(command))
            if wrapped is not None:
                snippets.append((f"rancher.network.{key}[{i}]", wrapped))
    for name, service in (rancher.get("services") or {}).items():
        for field in ("entrypoint", "command"):
            inline = _service_script(service, field)
            if inline is not None:
                snippets.append((f"rancher.services.{name}.{field}", inline))
    return snippets


def _service_script(service: dict[str, Any], field: str) -> str | None:
    value = service.get(field)
    if value is None:
        return None
    if field == "command" and service.get("entrypoint"):
        return None  # the entrypoint gets these as its arguments; it is checked on its own
    argv = shlex.split(value) if isinstance(value, str) else [str(v) for v in value]
    script = _sh_c(argv)
    return None if script is None else _COMPOSE_VARIABLE.sub(_compose_value, script)


def _compose_value(match: re.Match[str]) -> str:
    return "$" if match.group() == "$$" else "interpolated"


def _sh_c(argv: list[str]) -> str | None:
    if len(argv) >= 3 and argv[0] in SHELLS and argv[1] == "-c":
        return argv[2]
    return None


def shellcheck_errors(text: str) -> list[str]:
    """Every shellcheck finding (all severities), POSIX sh as on RancherOS's busybox."""
    snippets = shell_snippets(text)
    _shellcheck([script for _, script in snippets if script not in _FINDINGS])
    return [f"{name}: {finding}" for name, script in snippets for finding in _FINDINGS[script]]


# Findings per script text: hosts share most of their scripts, and one text needs checking once.
_FINDINGS: dict[str, tuple[str, ...]] = {}


def _shellcheck(scripts: list[str]) -> None:
    """Checks the scripts in one shellcheck run (one process per script would cost more than the checks)."""
    if not scripts:
        return
    unique = list(dict.fromkeys(scripts))
    with tempfile.TemporaryDirectory(prefix="shellcheck-") as folder:
        paths = [Path(folder) / f"{i}.sh" for i in range(len(unique))]
        for path, script in zip(paths, unique, strict=True):
            path.write_text(script)
        command = [str(SHELLCHECK), "--shell=sh", "--format=gcc", *map(str, paths)]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode not in (0, 1):
            raise RuntimeError(f"shellcheck failed: {result.stderr.strip()}")
        for path, script in zip(paths, unique, strict=True):
            prefix = f"{path}:"
            _FINDINGS[script] = tuple(
                line.removeprefix(prefix) for line in result.stdout.splitlines() if line.startswith(prefix)
            )


def non_preloaded_system_services(text: str) -> list[str]:
    """System-docker (a 17.06 fork, no OCI image indexes) may only run images preloaded in the AMI."""
    services = ((parsed(text) or {}).get("rancher") or {}).get("services") or {}
    return [
        f"rancher.services.{name}: system service with image {service.get('image')!r}"
        for name, service in services.items()
        if (service.get("labels") or {}).get("io.rancher.os.scope") == "system"
        and not str(service.get("image", "")).startswith(PRELOADED_IMAGE_PREFIX)
    ]


def unresolved_values(text: str) -> list[str]:
    """Template placeholders left in the text, metadata tokens RancherOS would replace (with `<nil>` when the
    metadata lacks them), and `environment: [VAR]` names no one provides (not in rancher.environment, not
    a `<service>/VAR` key node-bootstrap sets)."""
    problems = [f"placeholder {p} left in the text" for p in sorted(set(re.findall(r"@[A-Z_]+@", text)))]
    problems += [f"{token} in the text" for token in METADATA_EXAMPLES if token in text]
    document = parsed(text) or {}
    rancher = document.get("rancher") or {}
    provided = set((rancher.get("environment") or {}).keys())
    for entry in document.get("write_files") or []:
        match = re.search(r"^advertise='([^']*)'$", entry.get("content") or "", re.MULTILINE)
        if match:
            provided |= {line.split()[0] for line in match.group(1).splitlines() if line.strip()}
    for name, service in (rancher.get("services") or {}).items():
        for variable in service.get("environment") or []:
            if "=" not in variable and variable not in provided and f"{name}/{variable}" not in provided:
                problems.append(f"rancher.services.{name}: environment {variable} has no value")
    return problems


def incompressible(length: int, seed: int = 0, *, base64_only: bool = False) -> str:
    """`length` characters gzip can hardly shrink (user-data is stored gzip'd): random CJK characters (about
    14 bits each), or random base64 characters where only those are allowed (SSH key material)."""
    raw = hashlib.shake_256(seed.to_bytes(4, "big")).digest(2 * length)
    if base64_only:
        return base64.b64encode(raw).decode("ascii")[:length]
    return "".join(chr(0x4E00 + int.from_bytes(raw[n : n + 2], "big") % 0x5000) for n in range(0, 2 * length, 2))
