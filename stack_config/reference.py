"""The README's configuration reference and the JSON Schema of `Pulumi.<stack>.yaml`, both generated from
the models, so descriptions, defaults and constraints live in one place (`python3 dev.py docs` writes them)."""

from __future__ import annotations

import json
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from stack_config.loader import NAMESPACE, REGION_KEY
from stack_config.models import Secrets, StackConfig

BEGIN = "<!-- BEGIN generated from stack_config/models.py by `python3 dev.py docs`; edit the models, not this -->"
END = "<!-- END generated configuration reference -->"
SCHEMA_FILE = "schemas/pulumi-stack.schema.json"
Node = dict[str, Any]


def config_key(field: str) -> str:
    return REGION_KEY if field == "region" else f"{NAMESPACE}:{field}"


def reference_markdown() -> str:
    """Every key of a stack file: one heading per top-level key, a table for the keys inside it."""
    schema = StackConfig.model_json_schema()
    defs = schema["$defs"]
    parts = []
    for name, field in StackConfig.model_fields.items():
        node = schema["properties"][name]
        marker = " (required)" if field.is_required() else ""
        parts.append(f"### `{config_key(name)}`{marker}\n\n{_text(field.description or '')}")
        parts.append(_section_body(field, node, defs))
    secrets = Secrets.model_json_schema()
    for name, field in Secrets.model_fields.items():
        allowed = _allowed(secrets["properties"][name], secrets.get("$defs", {}))
        parts.append(
            f"### `{config_key(name)}` (secret)\n\n{_text(field.description or '')}\n\nAllowed: {_text(allowed)}."
        )
    return "\n\n".join(p for p in parts if p) + "\n"


def _section_body(field: FieldInfo, node: Node, defs: Node) -> str:
    model, is_list = _model_of(field.annotation)
    if model is None:
        return f"Allowed: {_text(_allowed(node, defs))}."
    intro = f"A {_allowed(node, defs)}, each with these keys:\n\n" if is_list else ""
    rows = _rows(model, _resolve(node["items"] if is_list else node, defs), defs, "")
    table = ["| key | default | allowed | meaning |", "| --- | --- | --- | --- |"]
    table += [f"| `{key}` | {' | '.join(_cell(text) for text in cells)} |" for key, *cells in rows]
    return intro + "\n".join(table)


def _rows(model: type[BaseModel], node: Node, defs: Node, prefix: str) -> list[tuple[str, str, str, str]]:
    rows = []
    for name, field in model.model_fields.items():
        child = node["properties"][name]
        inner, is_list = _model_of(field.annotation)
        key = prefix + name
        if inner is None or is_list:
            rows.append((key, _default(field), _allowed(child, defs), field.description or ""))
        if inner is not None:
            items = _resolve(_resolve(child, defs).get("items", child), defs)
            rows += _rows(inner, items, defs, f"{key}[]." if is_list else f"{key}.")
    return rows


def _model_of(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The model a field holds, directly, optionally or as list items, and whether it is a list."""
    if get_origin(annotation) in (Union, type(int | None)):
        annotation = next(a for a in get_args(annotation) if a is not type(None))
    if get_origin(annotation) is list:
        inner, _ = _model_of(get_args(annotation)[0])
        return inner, True
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    return None, False


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "(required)"
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "none"
    if isinstance(value, str):
        return f"`{value}`"
    return f"`{json.dumps(value)}`"


def _resolve(node: Node, defs: Node) -> Node:
    ref = node.get("$ref")
    return _resolve(defs[ref.rsplit("/", 1)[-1]], defs) if ref else node


def _allowed(node: Node, defs: Node) -> str:
    """What a value may be, in words, from its JSON Schema (types, bounds, enums and the checks' words)."""
    node = _resolve(node, defs)
    if "anyOf" in node:
        return " or ".join(_allowed(n, defs) for n in node["anyOf"] if n.get("type") != "null")
    if "enum" in node:
        return " or ".join(f"`{v}`" for v in node["enum"])
    kind = node.get("type")
    if kind == "integer":
        return f"whole number from {node.get('minimum', '-')} to {node.get('maximum', '-')}"
    if kind == "boolean":
        return "`true` or `false`"
    if kind == "array":
        least = f", at least {node['minItems']}" if "minItems" in node else ""
        if "properties" in _resolve(node["items"], defs):
            return f"list of objects{least}"
        return f"list of: {_allowed(node['items'], defs)}{least}"
    if kind == "object" and "properties" not in node:
        values: Node = node.get("additionalProperties") or next(iter(node.get("patternProperties", {}).values()), {})
        keys = _allowed({"type": "string", **node.get("propertyNames", {})}, defs)
        return f"a mapping; keys: {keys}; values: {_allowed(values, defs)}"
    if kind == "object":
        return "object"
    return "; ".join(node.get("x-allowed", [])) or "text"


def _cell(text: str) -> str:
    return _text(text).replace("|", "\\|")


def _text(text: str) -> str:
    """Markdown-safe text: `<` outside code spans would start an HTML tag and hide the words."""
    parts = text.replace("\n", " ").split("`")
    return "`".join(p if i % 2 else p.replace("<", "&lt;").replace(">", "&gt;") for i, p in enumerate(parts))


def updated_readme(readme: str) -> str:
    """The README with its generated section replaced (the markers must exist once each)."""
    head, begin, rest = readme.partition(BEGIN)
    _, end, tail = rest.partition(END)
    if not begin or not end:
        raise ValueError(f"README.md lacks the markers {BEGIN!r} and {END!r}")
    return f"{head}{BEGIN}\n{reference_markdown()}{END}{tail}"


def stack_file_schema() -> Node:
    """JSON Schema (draft-07) of a whole `Pulumi.<stack>.yaml`, for editors to validate and complete."""
    schema = StackConfig.model_json_schema()
    defs = schema.pop("$defs")
    properties = {config_key(name): node for name, node in schema["properties"].items()}
    secrets = Secrets.model_json_schema()
    for name, field in Secrets.model_fields.items():
        properties[config_key(name)] = {
            "description": f"{field.description} Set it with `pulumi config set --secret {config_key(name)} ...`.",
            "type": "object",
            "properties": {"secure": {"type": "string", "description": "Ciphertext written by `pulumi config`."}},
            "required": ["secure"],
            "additionalProperties": False,
        }
    ours = [n for n in [*StackConfig.model_fields, *secrets["properties"]] if n != "region"]
    # Since Pulumi CLI 3.44 a key without a namespace belongs to the project's namespace.
    short = {name: {"$ref": f"#/properties/config/properties/{config_key(name)}"} for name in ours}
    required = [{"anyOf": [{"required": [config_key(n)]}, {"required": [n]}]} for n in schema["required"]]
    alternatives = "|".join(ours)
    config = {
        "type": "object",
        "description": "Configuration of the stack; see the README's configuration reference.",
        "properties": {**properties, **short},
        "patternProperties": {
            f"^{NAMESPACE}:(?!(?:{alternatives})$)": False,
            f"^(?!(?:{alternatives})$)[^:]*$": False,
        },
        "allOf": required,
    }
    document = _for_editors(
        {
            "type": "object",
            "properties": {
                "config": config,
                "secretsprovider": {"type": "string"},
                "encryptedkey": {"type": "string"},
                "encryptionsalt": {"type": "string"},
                "environment": {"description": "Pulumi ESC environments imported by the stack."},
            },
            "additionalProperties": False,
            "$defs": defs,
        }
    )
    title = f"Pulumi.<stack>.yaml of the {NAMESPACE} project"
    return {"$schema": "http://json-schema.org/draft-07/schema#", "title": title, **document}


def _for_editors(node: Any) -> Any:
    """Drop pydantic's generated titles ("Minsize"), which editors would show instead of the key, and make a
    mapping's key pattern refuse other keys (pydantic only states it as `patternProperties`)."""
    if isinstance(node, dict):
        patterns = list(node.get("patternProperties", {}))
        if len(patterns) == 1 and "propertyNames" in node:
            node = {**node, "propertyNames": {**node["propertyNames"], "pattern": patterns[0]}}
        return {k: _for_editors(v) for k, v in node.items() if not (k == "title" and isinstance(v, str))}
    if isinstance(node, list):
        return [_for_editors(v) for v in node]
    return node


def schema_text() -> str:
    return json.dumps(stack_file_schema(), indent=2, sort_keys=True) + "\n"
