"""Turn a stack's raw config map into a StackConfig, or one error listing every problem."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from stack_config.aws_rules import aws_problems
from stack_config.models import Secrets, StackConfig
from stack_config.quoting import path_part, quoted
from stack_config.rules import Problem, Sections, problems

NAMESPACE = "swarm-cluster"
REGION_KEY = "aws:region"
SECRET_KEYS = frozenset(Secrets.model_fields)
MAX_LISTED = 40  # a message is read by a person: past this many problems, the rest are counted


class ConfigError(Exception):
    """Every problem of one stack file, one per line, ready to show to the user as is."""


def load_stack_config(stack: str, raw: Mapping[str, Any], secret_keys: Collection[str] = ()) -> StackConfig:
    """Validate the flat `{"namespace:key": value}` map Pulumi hands to a program.

    Values are what the engine passes: objects and lists as JSON text, scalars as strings. `secret_keys`:
    the keys the engine marks secret (`secure:` in the stack file, `fn::secret` in a Pulumi ESC environment).
    """
    data, found = _unflatten(raw)
    found += _plain_text_secrets(raw, secret_keys)
    unreadable = {path.partition(":")[2] for path, _ in found}
    sections: dict[str, Any] = {}
    for key, field in StackConfig.model_fields.items():
        if key in unreadable:
            continue
        if key not in data and field.is_required():
            found.append((_qualified(key), "missing; this key is required"))
            continue
        try:
            sections[key] = _validate(key, data[key]) if key in data else field.get_default(call_default_factory=True)
        except ValidationError as error:
            found += [_problem(e, prefix=(key,)) for e in error.errors()]
    found += _secret_problems(raw)
    has_secret = f"{NAMESPACE}:registryHttpSecret" in raw
    known = Sections(**{k: sections.get(k) for k in Sections.__dataclass_fields__})
    cross_key = [*problems(known, has_registry_secret=has_secret), *aws_problems(known)]
    found += [(_qualified(path), reason) for path, reason in cross_key]
    if found:
        lines = [f"Pulumi.{stack}.yaml: {path}: {reason}" for path, reason in found[:MAX_LISTED]]
        listed = "" if len(found) <= MAX_LISTED else f", the first {MAX_LISTED} listed"
        raise ConfigError(f"invalid stack configuration ({len(found)} problem(s){listed}):\n" + "\n".join(lines))
    return StackConfig.model_validate(data)


def _plain_text_secrets(raw: Mapping[str, Any], secret_keys: Collection[str]) -> list[Problem]:
    """A literal secret would sit unencrypted in the stack file, the state and every plan artifact."""
    return [
        (
            full_key,
            (
                f"given as plain text; a secret must be encrypted: `pulumi config set --secret {full_key} <value>` "
                "(a `secure:` value) or an `fn::secret` value of a Pulumi ESC environment the stack imports"
            ),
        )
        for full_key in sorted(f"{NAMESPACE}:{key}" for key in SECRET_KEYS)
        if full_key in raw and full_key not in secret_keys
    ]


def _secret_problems(raw: Mapping[str, Any]) -> list[Problem]:
    """Secrets arrive decrypted; their shape is checked like any value, but never quoted back."""
    secrets = {key: raw[_qualified(key)] for key in SECRET_KEYS if _qualified(key) in raw}
    try:
        Secrets.model_validate(secrets)
    except ValidationError as error:
        return [_problem({**e, "input": "<secret>"}, prefix=()) for e in error.errors()]
    return []


def _validate(key: str, value: Any) -> Any:
    """One key on its own, with the same types and constraints as in StackConfig."""
    field = StackConfig.model_fields[key]
    annotation: Any = Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
    return TypeAdapter(annotation).validate_python(value, strict=True)


def _unflatten(raw: Mapping[str, Any]) -> tuple[dict[str, Any], list[Problem]]:
    data: dict[str, Any] = {}
    found: list[Problem] = []
    if REGION_KEY in raw:
        data["region"] = raw[REGION_KEY]
    allowed = [k for k in StackConfig.model_fields if k != "region"]
    for full_key, value in sorted(raw.items()):
        namespace, _, key = full_key.partition(":")
        if near_namespace(namespace):
            found.append(
                (
                    path_part(full_key),
                    f"the namespace {quoted(namespace)} is not this project's; write {NAMESPACE}:{path_part(key)}",
                )
            )
        if namespace != NAMESPACE or key in SECRET_KEYS:
            continue
        if key not in allowed:
            found.append((path_part(full_key), f"unknown key; the {NAMESPACE} keys are {', '.join(allowed)}"))
            continue
        try:
            data[key] = json.loads(value) if isinstance(value, str) else value
        except json.JSONDecodeError:
            found.append((full_key, f"got the text {quoted(value)}; expected a YAML object or list"))
        except RecursionError:
            found.append((full_key, "nested too deeply to read; flatten the value"))
    return data, found


def relevant(key: str) -> bool:
    """Whether the program reads `key`: the region, the project's keys, and keys whose namespace is a typo of
    the project's (which Pulumi would hand to no one, silently dropping a whole section)."""
    namespace = key.partition(":")[0]
    return key == REGION_KEY or namespace == NAMESPACE or near_namespace(namespace)


def near_namespace(namespace: str) -> bool:
    """`swarm_cluster`, `SwarmCluster`, `swarm-cluste`: another namespace a person meant to be ours."""
    if namespace == NAMESPACE:
        return False
    squashed = "".join(c for c in namespace.lower() if c.isalnum())
    return squashed == "".join(c for c in NAMESPACE if c.isalnum()) or _edits(namespace.lower(), NAMESPACE) <= 2


def _edits(a: str, b: str) -> int:
    """Levenshtein distance."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (ca != cb))
    return row[-1]


def _qualified(path: str) -> str:
    return REGION_KEY if path == "region" else f"{NAMESPACE}:{path}"


def _problem(error: ErrorDetails, prefix: tuple[str, ...]) -> Problem:
    loc = (*prefix, *error["loc"])
    # "[key]" marks a problem with a mapping's key rather than its value; the key is already in the path.
    parts = [p for p in loc if p != "[key]"]
    path = _qualified("".join(f"[{p}]" if isinstance(p, int) else f".{path_part(p)}" for p in parts).lstrip("."))
    kind, message = error["type"], error["msg"]
    if kind == "missing":
        return path, "missing; this key is required"
    if kind == "extra_forbidden":
        return path, f"unknown key; allowed here: {', '.join(_allowed_keys(loc[:-1]))}"
    if kind == "value_error":
        return path, message.removeprefix("Value error, ")
    return path, f"got {quoted(error['input'])}; {message.replace('Input should be', 'expected')}"


def _allowed_keys(loc: tuple[int | str, ...]) -> list[str]:
    """The field names of the model found by walking `loc` down from StackConfig."""
    annotation: Any = StackConfig
    for part in loc:
        annotation = _unwrap(annotation)
        if isinstance(part, str) and isinstance(annotation, type) and issubclass(annotation, BaseModel):
            annotation = annotation.model_fields[part].annotation
        else:
            annotation = get_args(annotation)[-1]  # list item or dict value
    model = _unwrap(annotation)
    return list(model.model_fields) if isinstance(model, type) and issubclass(model, BaseModel) else []


def _unwrap(annotation: Any) -> Any:
    """Strip `X | None` so the walk reaches the model inside an optional field."""
    if get_origin(annotation) in (Union, type(int | None)):
        return next(a for a in get_args(annotation) if a is not type(None))
    return annotation
