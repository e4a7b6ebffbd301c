"""The configuration reference in README.md and the stack-file JSON Schema are generated from the models."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from pydantic import BaseModel

from offline.config_docs import generated
from offline.stack_files import PROJECT_ROOT
from stack_config.models import Secrets, StackConfig
from stack_config.reference import SCHEMA_FILE, stack_file_schema
from tests.conftest import STACKS
from tests.stack_mutations import document as stack_document


@pytest.mark.parametrize("name", ["README.md", SCHEMA_FILE])
def test_generated_files_are_current(name: str) -> None:
    wanted = generated()[name]
    current = (PROJECT_ROOT / name).read_text(encoding="utf-8")
    assert current == wanted, (
        f"{name} is stale: a config model changed. Run `python3 dev.py docs` and commit README.md and {SCHEMA_FILE}"
    )


def _models(model: type[BaseModel]) -> list[type[BaseModel]]:
    found = [model]
    for field in model.model_fields.values():
        for inner in (field.annotation, *getattr(field.annotation, "__args__", ())):
            if isinstance(inner, type) and issubclass(inner, BaseModel) and inner not in found:
                found += _models(inner)
    return found


def test_every_config_key_has_a_description() -> None:
    undescribed = [
        f"{model.__name__}.{name}"
        for model in (*_models(StackConfig), Secrets)
        for name, field in model.model_fields.items()
        if not field.description
    ]
    assert not undescribed, f"add Field(description=...) to: {undescribed}"


@pytest.mark.parametrize("stack", STACKS)
def test_schema_accepts_the_committed_stack_files(stack: str) -> None:
    jsonschema.Draft7Validator.check_schema(stack_file_schema())
    jsonschema.Draft7Validator(stack_file_schema()).validate(stack_document(stack))


def _unnamespaced(document: dict[str, Any]) -> None:
    config = document["config"]
    config["access"] = config.pop("swarm-cluster:access")


@pytest.mark.parametrize(
    ("mutate", "valid"),
    [
        (lambda d: d["config"]["swarm-cluster:nodeGroups"][0].update(colour="blue"), False),
        (lambda d: d["config"]["swarm-cluster:consul"].update(serverCount=9), False),
        (lambda d: d["config"]["swarm-cluster:rancheros"].update(amiId="ami-1"), False),
        (lambda d: d["config"].update({"swarm-cluster:typo": 1}), False),
        (lambda d: d["config"].update({"typo": 1}), False),
        (lambda d: d["config"].pop("swarm-cluster:registry"), False),
        (lambda d: d["config"].update({"swarm-cluster:registryHttpSecret": "plain"}), False),
        (lambda d: d.update(conifg={}), False),
        (lambda d: d["config"]["swarm-cluster:tags"].update({"team/name": "ops"}), False),
        (lambda d: d["config"]["swarm-cluster:nodeGroups"][1]["labels"].update(tier="edge"), False),
        (_unnamespaced, True),
        (lambda d: d["config"].update({"aws:profile": "ops"}), True),
    ],
)
def test_schema_checks_what_editors_can_check(mutate: Any, valid: bool) -> None:
    document = stack_document("staging")
    mutate(document)
    errors = list(jsonschema.Draft7Validator(stack_file_schema()).iter_errors(document))
    assert (not errors) == valid, [e.message for e in errors]
