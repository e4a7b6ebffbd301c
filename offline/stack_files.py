"""Read `Pulumi.yaml` and `Pulumi.<stack>.yaml` the way the Pulumi engine hands them to a program."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from stack_config.loader import NAMESPACE, REGION_KEY, SECRET_KEYS
from stack_config.models import StackConfig

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# `secure:` values are encrypted for the stack's secrets provider, which is not reachable offline.
SECRET_PLACEHOLDER = "offline-placeholder-secret"


class StackFileError(Exception):
    pass


@dataclass(frozen=True)
class EscImports:
    """The Pulumi ESC environments a stack file imports: only the Pulumi CLI can open them."""

    stack_file: str
    environments: tuple[str, ...]
    placeholders: tuple[str, ...]  # secret keys the stack file lacks, planned with a placeholder

    def notice(self) -> str:
        names = ", ".join(self.environments)
        planned = ", ".join(self.placeholders) or "none"
        return (
            f"{self.stack_file} imports the Pulumi ESC environment(s) {names}, which only the Pulumi CLI can "
            f"open: the offline plan uses the stack file's own keys and placeholders for the secret keys it "
            f"lacks ({planned})."
        )


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
    config = _config_section(path, document)
    values: dict[str, str] = {}
    secrets: list[str] = []
    for key, value in config.items():
        if isinstance(value, dict) and set(value) == {"secure"}:
            values[key] = SECRET_PLACEHOLDER
            secrets.append(key)
        else:
            values[key] = _engine_text(value)
    esc = _esc_imports(path, document)
    if esc is not None:
        _require_offline_keys(esc, values)
        values.update(dict.fromkeys(esc.placeholders, SECRET_PLACEHOLDER))
        secrets += esc.placeholders
    return values, secrets


def esc_imports(stack: str, project_dir: Path = PROJECT_ROOT) -> EscImports | None:
    path = project_dir / f"Pulumi.{stack}.yaml"
    return _esc_imports(path, _load(path)) if path.exists() else None


def _config_section(path: Path, document: dict[str, Any]) -> dict[str, Any]:
    config = document.get("config") or {}
    if not isinstance(config, dict):
        raise StackFileError(f"{path.name}: config: expected a mapping of keys to values")
    return config


def _esc_imports(path: Path, document: dict[str, Any]) -> EscImports | None:
    """`environment:` is a list of environment names, or an inline definition whose `imports` lists them."""
    listed = document.get("environment")
    if not listed:
        return None
    names = listed.get("imports", []) if isinstance(listed, dict) else listed
    if not isinstance(names, list):
        raise StackFileError(f"{path.name}: environment: expected a list of Pulumi ESC environment names")
    config = _config_section(path, document)
    secrets = sorted(f"{NAMESPACE}:{key}" for key in SECRET_KEYS)
    return EscImports(
        stack_file=path.name,
        environments=tuple(str(n) for n in names) or ("(inline definition)",),
        placeholders=tuple(key for key in secrets if key not in config),
    )


def _require_offline_keys(esc: EscImports, values: dict[str, str]) -> None:
    """A required key ESC would set cannot be guessed: say so, instead of calling it missing."""
    required = [
        REGION_KEY if key == "region" else f"{NAMESPACE}:{key}"
        for key, field in StackConfig.model_fields.items()
        if field.is_required()
    ]
    absent = [key for key in required if key not in values]
    if absent:
        environments = ", ".join(esc.environments)
        raise StackFileError(
            "\n".join(
                f"{esc.stack_file}: {key}: not in the stack file, so it would come from the Pulumi ESC "
                f"environment(s) {environments}, which the offline plan cannot open; copy the key into "
                f"{esc.stack_file} to plan offline"
                for key in absent
            )
        )


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
