"""Read `Pulumi.yaml` and `Pulumi.<stack>.yaml` the way the Pulumi engine hands them to a program."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from offline.stack_yaml import YamlProblem, load_yaml
from stack_config.loader import NAMESPACE, REGION_KEY, SECRET_KEYS
from stack_config.models import StackConfig
from stack_config.quoting import quoted

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# `secure:` values are encrypted for the stack's secrets provider, which is not reachable offline.
# Base64 of 32 bytes, so it also passes as a Consul gossip key.
SECRET_PLACEHOLDER = "b2ZmbGluZSBwbGFjZWhvbGRlciwgbm90IHNlY3JldCE="


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
        raise StackFileError(f"{path.name}: config: not a mapping; expected a mapping of keys to values")
    return _namespaced(path.name, config, project_name(path.parent))


def _namespaced(stack_file: str, config: dict[str, Any], project: str) -> dict[str, Any]:
    """Config keys as the engine names them (Pulumi CLI 3.44 and later, `stackConfigNamespacedWithProject`
    and `config.ParseKey`): a key without a namespace is the project's, `ns:config:name` is `ns:name`."""
    named: dict[str, Any] = {}
    for key, value in config.items():
        parts = key.split(":")
        if len(parts) == 3 and parts[1] == "config":
            parts = [parts[0], parts[2]]
        if len(parts) > 2:
            raise StackFileError(
                f"{stack_file}: {quoted(key)}: not a configuration key; write <namespace>:<name>, e.g. {project}:tags"
            )
        full = f"{project}:{key}" if len(parts) == 1 else ":".join(parts)
        if full in named:
            raise StackFileError(f"{stack_file}: {full}: given twice, once as {quoted(key)}; keep one")
        named[full] = value
    return named


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
    if value is None:
        return ""  # what the CLI passes for an empty value (it warns that this will become null)
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _load(path: Path) -> dict[str, Any]:
    try:
        data = path.read_bytes().removeprefix(b"\xef\xbb\xbf")  # the CLI skips a UTF-8 byte order mark too
    except OSError as error:  # a project without Pulumi.yaml, a stack file that is a folder
        raise StackFileError(
            f"{path.name}: (file): cannot read it ({error.strerror}); it must be a file in {path.parent}"
        ) from None
    try:
        document = load_yaml(data.decode("utf-8"))
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise StackFileError(
            f"{path.name}: (file): line {line}: byte {data[error.start]:#04x} is not UTF-8; save the file as UTF-8"
        ) from None
    except YamlProblem as problem:
        raise StackFileError(f"{path.name}: {problem}") from None
    if not isinstance(document, dict):
        raise StackFileError(f"{path.name}: (file): the document is not a mapping; start with `config:`")
    return document
