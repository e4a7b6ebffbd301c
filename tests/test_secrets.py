"""Secret config: never a literal, never in a plan artifact; stacks that import Pulumi ESC still plan offline."""

from __future__ import annotations

import json
from pathlib import Path

import pulumi
import pytest
import yaml

from offline import plan
from offline.artifacts import write_artifacts
from offline.harness import StackRun, run_stack
from offline.program_copy import copy_program
from offline.stack_files import PROJECT_ROOT, SECRET_PLACEHOLDER, StackFileError, esc_imports, stack_config_map
from stack_config.loader import load_stack_config
from tests.conftest import recorded
from tests.plan_runs import plan_in_process as _plan

SECRET_KEY = "swarm-cluster:registryHttpSecret"
LITERAL = "0123456789abcdef-plain-text"


def _with_stack_file(tmp_path: Path, stack: str, edit: dict[str, object]) -> Path:
    project = copy_program(tmp_path)
    path = project / f"Pulumi.{stack}.yaml"
    document = yaml.safe_load(path.read_text())
    for key, value in edit.items():
        if key.startswith("config."):
            config_key = key.removeprefix("config.")
            if value is None:
                del document["config"][config_key]
            else:
                document["config"][config_key] = value
        else:
            document[key] = value
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return project


def test_a_plain_text_secret_is_refused_before_any_resource() -> None:
    values, secrets = stack_config_map("production")
    values[SECRET_KEY] = LITERAL
    partial = StackRun(stack="production")
    others = [key for key in secrets if key != SECRET_KEY]
    with pytest.raises(pulumi.RunError) as caught:
        run_stack("production", config=values, secret_keys=others, record=partial)  # the literal is not secret
    assert partial.resources == []
    lines = str(caught.value).splitlines()[1:]
    assert lines == [
        f"Pulumi.production.yaml: {SECRET_KEY}: given as plain text; a secret must be encrypted: "
        f"`pulumi config set --secret {SECRET_KEY} <value>` (a `secure:` value) or an `fn::secret` value of a "
        "Pulumi ESC environment the stack imports"
    ]


def test_the_same_value_marked_secret_is_accepted() -> None:
    """The value itself is the program's to refuse only as plain text: a secret of any value (the stack's own
    run has the offline placeholder) becomes the value of an SSM parameter, which Pulumi keeps secret."""
    values, secrets = stack_config_map("production")
    values[SECRET_KEY] = LITERAL
    assert load_stack_config("production", values, secrets) == load_stack_config(
        "production", *stack_config_map("production")
    )
    parameter = recorded("production").named(
        "aws:ssm/parameter:Parameter", "production-cluster-registry-http-secret-parameter"
    )
    assert parameter.secret_inputs == ("value",)


def test_offline_plan_of_a_plain_text_secret_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    project = _with_stack_file(tmp_path, "production", {f"config.{SECRET_KEY}": LITERAL})
    result = _plan(project, "production")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"Pulumi.production.yaml: {SECRET_KEY}: given as plain text" in result.stderr
    assert LITERAL not in result.stdout + result.stderr
    assert not (project / "build").exists()


def test_plan_artifacts_carry_the_placeholder_not_the_secret(tmp_path: Path) -> None:
    ciphertext = yaml.safe_load((PROJECT_ROOT / "Pulumi.production.yaml").read_text())["config"][SECRET_KEY]["secure"]
    run = recorded("production")
    written, document = "".join(p.read_text() for p in write_artifacts(run, tmp_path)), plan.document(run)
    assert SECRET_PLACEHOLDER not in written, "user-data carries no secret, not even the placeholder"
    assert SECRET_PLACEHOLDER in document and ciphertext not in written + document


def test_esc_stack_plans_with_placeholders_and_says_so(tmp_path: Path) -> None:
    project = _with_stack_file(
        tmp_path, "production", {"environment": ["example/production"], f"config.{SECRET_KEY}": None}
    )
    values, secrets = stack_config_map("production", project)
    assert values[SECRET_KEY] == SECRET_PLACEHOLDER and SECRET_KEY in secrets
    # The program gets what it gets from the stack file without ESC, so it plans as that stack's recorded run does.
    assert (values, secrets) == stack_config_map("production")
    esc = esc_imports("production", project)
    assert esc is not None and esc.placeholders == (SECRET_KEY,)
    assert esc.notice().startswith(
        "Pulumi.production.yaml imports the Pulumi ESC environment(s) example/production, which only the "
        "Pulumi CLI can open"
    )
    assert f"placeholders for the secret keys it lacks ({SECRET_KEY})" in esc.notice()


def test_esc_stack_without_a_required_key_names_it_plainly(tmp_path: Path) -> None:
    project = _with_stack_file(
        tmp_path, "staging", {"environment": ["example/staging"], "config.swarm-cluster:network": None}
    )
    with pytest.raises(StackFileError) as caught:
        stack_config_map("staging", project)
    assert str(caught.value) == (
        "Pulumi.staging.yaml: swarm-cluster:network: not in the stack file, so it would come from the Pulumi ESC "
        "environment(s) example/staging, which the offline plan cannot open; copy the key into Pulumi.staging.yaml "
        "to plan offline"
    )
    result = _plan(project, "staging")
    assert result.returncode == 2 and "missing; this key is required" not in result.stderr
    assert result.stderr.startswith(f"note: {esc_imports('staging', project).notice()}\n"), "said before planning"


def test_stack_without_esc_has_no_placeholders_beyond_its_own_secrets() -> None:
    assert esc_imports("staging") is None
    values, secrets = stack_config_map("staging")
    assert SECRET_KEY not in values and secrets == ["swarm-cluster:consulGossipKey"]
    assert json.loads(values["swarm-cluster:registry"])["replicas"] == 1
