"""Read `Pulumi.yaml` and `Pulumi.<stack>.yaml` the way the Pulumi engine hands them to a program."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# `secure:` values are encrypted for the stack's secrets provider, which is not reachable offline.
SECRET_PLACEHOLDER = "offline-placeholder-secret"


class StackFileError(Exception):
    pass


def project_name(project_dir: Path = PROJECT_ROOT) -> str:
    return str(_load(project_dir / "Pulumi.yaml")["name"])


def stack_names(project_dir: Path = PROJECT_ROOT) -> list[str]:
    return sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in project_dir.glob("Pulumi.*.yaml"))


def stack_config_map(stack: str, project_dir: Path = PROJECT_ROOT) -> tuple[dict[str, str], list[str]]:
    """The flat `{"namespace:key": "text"}` map and the secret keys, as the engine passes them."""
    path = project_dir / f"Pulumi.{stack}.yaml"
    if not path.exists():
        known = ", ".join(stack_names(project_dir)) or "none"
        raise StackFileError(f"{path.name}: no such stack file; the stacks are: {known}")
    document = _load(path)
    config = document.get("config") or {}
    if not isinstance(config, dict):
        raise StackFileError(f"{path.name}: config: expected a mapping of keys to values")
    values: dict[str, str] = {}
    secrets: list[str] = []
    for key, value in config.items():
        if isinstance(value, dict) and set(value) == {"secure"}:
            values[key] = SECRET_PLACEHOLDER
            secrets.append(key)
        else:
            values[key] = _engine_text(value)
    return values, secrets


def _engine_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _load(path: Path) -> dict[str, Any]:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise StackFileError(f"{path.name}: not valid YAML: {error}") from None
    if not isinstance(document, dict):
        raise StackFileError(f"{path.name}: expected a YAML mapping at the top level")
    return document
