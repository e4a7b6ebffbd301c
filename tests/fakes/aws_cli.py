"""A fake `aws` command line for tests of the GitHub-runner scripts (`.github/scripts/*.sh`).

`FakeAwsCli` is one validating server per test module (a thread on loopback); its `install(bin_dir, state_dir,
scenario)` puts an `aws` executable on a PATH folder: a bash client that forwards its arguments to the server and
prints the answer, so a call costs a bash start, not a Python start, an import of botocore and a load of its
service models. Every call is checked the way the real AWS CLI v2 would accept it, against botocore's service
model: the operation exists, every `--option` names a member of its input shape (CLI option names are the
members' names through botocore's `xform_name`), values parse as the member's type (integers, `--flag/--no-flag`
booleans, lists, `Name=..,Values=..` shorthand structures), then botocore's own validator checks required members,
ranges, lengths and enums.
Paginated operations take `--page-size`, `--max-items` and `--starting-token` instead of their raw token
and limit members, as the CLI does.
A bad call exits 252 with the CLI's kind of message. The answer is built from the scenario, checked
against the operation's output shape (enum values included), then `--query` (JMESPath) and `--output` apply.
A fault of the fake itself (a failed check of its own answer) exits 255 with the traceback, and is kept in
`errors`.

Scenario (JSON, in `state_dir/scenario.json`; a test may rewrite it between script runs):
    {"groups": [{"name": str, "tags": {str: str}, "desired": int, "min": int, "max": int,
                 "defaultInstanceWarmup": int}],
     "refreshes": {group name: [{"id": str, "start": ISO time, "timeline": [status, ...],
                                 "preferences": {...RefreshPreferences...}, "statusReason": str}]}}
Each DescribeInstanceRefreshes call of a group moves each of its refreshes one step along its timeline (the
last status stays). Calls are recorded, one JSON line each, in `state_dir/calls.jsonl`.
"""

from __future__ import annotations

import functools
import json
import shlex
import traceback
from pathlib import Path
from typing import Any

import botocore.session
import jmespath
from botocore import xform_name
from botocore.exceptions import ParamValidationError
from botocore.model import OperationModel, Shape, StructureShape
from botocore.validate import validate_parameters

from tests.fakes.server import FakeServer, Reply, Request

GLOBAL_VALUES = ("--output", "--query", "--region", "--profile", "--endpoint-url")
GLOBAL_FLAGS = ("--no-cli-pager", "--no-paginate", "--debug")
PAGING = {"--page-size": "integer", "--max-items": "integer", "--starting-token": "string"}
USAGE_ERROR = 252  # what AWS CLI v2 exits with for a command it cannot parse
FAULT = 255  # what AWS CLI v2 exits with when it fails unexpectedly

# The `aws` a script runs: bash, since a Python client's start alone costs ten times its whole run. Request body:
# the state folder and the arguments, each ended by NUL; answer body: `STATUS OUT_BYTES ERR_BYTES\n` then both texts.
CLIENT = r"""#!/bin/bash
LC_ALL=C
exec 3<>/dev/tcp/127.0.0.1/{port}
length=0
for word in {state_dir} "$@"; do length=$((length + ${{#word}} + 1)); done
printf 'POST / HTTP/1.0\r\nContent-Length: %d\r\n\r\n' "$length" >&3
printf '%s\0' {state_dir} "$@" >&3
while IFS= read -r line <&3 && [ "$line" != $'\r' ]; do :; done
read -r status out_bytes err_bytes <&3
IFS= read -r -d '' -N "$out_bytes" out <&3
IFS= read -r -d '' -N "$err_bytes" err <&3
printf '%s' "$out"
printf '%s' "$err" >&2
exit "$status"
"""


class UsageError(Exception):
    pass


class FakeAwsCli(FakeServer):
    """Answers every `aws` installed with it; one per test module, so botocore loads its models once."""

    def install(self, bin_dir: Path, state_dir: Path, scenario: dict[str, Any]) -> None:
        bin_dir.mkdir(parents=True, exist_ok=True)
        state_dir.mkdir(parents=True, exist_ok=True)
        (state_dir / "scenario.json").write_text(json.dumps(scenario))
        port = self.url.rpartition(":")[2]
        wrapper = bin_dir / "aws"
        wrapper.write_text(CLIENT.format(state_dir=shlex.quote(str(state_dir)), port=port))
        wrapper.chmod(0o755)

    def handle(self, request: Request) -> Reply:
        state_dir, *argv = request.body.decode().split("\0")[:-1]
        try:
            status, out, err = respond(Path(state_dir), argv)
        except Exception:
            self.errors.append(traceback.format_exc())
            status, out, err = FAULT, "", traceback.format_exc()
        head = f"{status} {len(out.encode())} {len(err.encode())}\n"
        return Reply(body=(head + out + err).encode())


def calls(state_dir: Path) -> list[dict[str, Any]]:
    path = state_dir / "calls.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def respond(state_dir: Path, argv: list[str]) -> tuple[int, str, str]:
    """What the CLI would exit with and print on stdout and stderr."""
    try:
        options, operation, params = parse(argv)
    except UsageError as error:
        return USAGE_ERROR, "", f"aws: error: {error}\n"
    with (state_dir / "calls.jsonl").open("a") as log:
        log.write(json.dumps({"operation": operation.name, "params": params, "options": options}) + "\n")
    answer = ANSWERS[operation.name](state_dir, params)
    _check_output(operation.output_shape, answer, operation.name)
    result = jmespath.search(options["--query"], answer) if "--query" in options else answer
    text = _text(result) if options.get("--output") == "text" else json.dumps(result, indent=4, default=str)
    return 0, text + "\n", ""


@functools.cache
def _session() -> botocore.session.Session:
    return botocore.session.get_session()


def parse(argv: list[str]) -> tuple[dict[str, str], OperationModel, dict[str, Any]]:
    options: dict[str, str] = {}
    rest: list[str] = []
    words = iter(argv)
    for word in words:
        if word in GLOBAL_VALUES:
            options[word] = next(words, "")
        elif word not in GLOBAL_FLAGS:
            rest.append(word)
    if len(rest) < 2:
        raise UsageError("the following arguments are required: command, operation")
    if options.get("--output", "json") not in ("json", "text", "table", "yaml", "yaml-stream"):
        raise UsageError(f"argument --output: Invalid choice: {options['--output']!r}")
    session = _session()
    service, command, *arguments = rest
    if service not in session.get_available_services():
        raise UsageError(f"argument command: Invalid choice: {service!r}")
    model = session.get_service_model(service)
    names = {xform_name(name, "-"): name for name in model.operation_names}
    if command not in names:
        raise UsageError(f"argument operation: Invalid choice: {command!r} is not an operation of {service}")
    operation = model.operation_model(names[command])
    paginated = session.get_paginator_model(service)._paginator_config.get(operation.name)
    return options, operation, _parameters(operation, arguments, paginated)


def _parameters(operation: OperationModel, arguments: list[str], paging: dict[str, Any] | None) -> dict[str, Any]:
    shape = operation.input_shape
    members = {xform_name(name, "-"): name for name in (shape.members if shape else {})}
    if paging:  # the CLI replaces the raw token and limit members by its own paging options
        hidden = [paging["input_token"], paging.get("limit_key")]
        members = {option: name for option, name in members.items() if name not in hidden}
    params: dict[str, Any] = {}
    i = 0
    while i < len(arguments):
        word = arguments[i]
        values = _values(arguments, i + 1)
        i += 1 + len(values)
        if paging and word in PAGING:
            if len(values) != 1:
                raise UsageError(f"argument {word}: expected one argument")
            params[word] = _scalar(word, PAGING[word], values[0])
            continue
        negated = word.startswith("--no-") and word[5:] in members
        option = word[5:] if negated else word.removeprefix("--")
        if not word.startswith("--") or option not in members:
            raise UsageError(f"Unknown options: {word}")
        name = members[option]
        member = shape.members[name]
        params[name] = _value(word, member, values, negated)
    missing = [m for m in (shape.required_members if shape else []) if m not in params]
    if missing:
        needed = ", ".join(f"--{xform_name(m, '-')}" for m in missing)
        raise UsageError(f"the following arguments are required: {needed}")
    try:
        validate_parameters({k: v for k, v in params.items() if k not in PAGING}, shape)
    except ParamValidationError as error:
        raise UsageError(str(error)) from None
    return params


def _values(arguments: list[str], start: int) -> list[str]:
    end = start
    while end < len(arguments) and not arguments[end].startswith("--"):
        end += 1
    return arguments[start:end]


def _value(option: str, shape: Shape, values: list[str], negated: bool) -> Any:
    if shape.type_name == "boolean":
        if values:
            raise UsageError(f"argument {option}: expected no value (a flag)")
        return not negated
    if negated:
        raise UsageError(f"Unknown options: {option}")
    if shape.type_name == "list":
        if not values:
            raise UsageError(f"argument {option}: expected at least one argument")
        return [_item(option, shape.member, v) for v in values]  # type: ignore[attr-defined]
    if len(values) != 1:
        raise UsageError(f"argument {option}: expected one argument")
    return _item(option, shape, values[0])


def _item(option: str, shape: Shape, text: str) -> Any:
    if isinstance(shape, StructureShape):
        return _structure(option, shape, text)
    return _scalar(option, shape.type_name, text)


def _scalar(option: str, type_name: str, text: str) -> Any:
    """Parsed as the CLI parses a value; ranges, lengths and enums are botocore's to check."""
    if type_name in ("integer", "long"):
        try:
            return int(text)
        except ValueError:
            raise UsageError(f"argument {option}: invalid int value: {text!r}") from None
    return text


def _structure(option: str, shape: StructureShape, text: str) -> dict[str, Any]:
    """Shorthand `Name=tag:k,Values=a,b` (a comma-separated list continues the previous key) or JSON."""
    if text.lstrip().startswith("{"):
        parsed: dict[str, Any] = json.loads(text)
    else:
        parsed = {}
        key = None
        for part in text.split(","):
            if "=" in part:
                key, _, value = part.partition("=")
                parsed[key] = [value] if shape.members.get(key) and shape.members[key].type_name == "list" else value
            elif key is not None and isinstance(parsed[key], list):
                parsed[key].append(part)
            else:
                raise UsageError(f"argument {option}: cannot parse shorthand {text!r}")
    unknown = sorted(set(parsed) - set(shape.members))
    if unknown:
        raise UsageError(f"argument {option}: unknown keys {unknown}; valid: {', '.join(shape.members)}")
    return parsed


def _check_output(shape: Shape | None, value: Any, where: str) -> None:
    """The fake answers only what AWS could answer: known members, enum values."""
    if shape is None or value is None:
        return
    if isinstance(shape, StructureShape):
        assert isinstance(value, dict), where
        for key, item in value.items():
            assert key in shape.members, f"{where}: {key} is not a member of {shape.name}"
            _check_output(shape.members[key], item, f"{where}.{key}")
    elif shape.type_name == "list":
        for item in value:
            _check_output(shape.member, item, where)  # type: ignore[attr-defined]
    elif getattr(shape, "enum", None):
        assert value in shape.enum, f"{where}: {value!r} is not one of {shape.enum}"  # type: ignore[attr-defined]


def _text(result: Any) -> str:
    """What `--output text` prints for the shapes scripts query: scalars, rows of scalars, lists of rows."""
    if isinstance(result, list):
        if result and all(isinstance(row, list) for row in result):
            return "\n".join("\t".join(_cell(c) for c in row) for row in result)
        return "\t".join(_cell(c) for c in result)
    return _cell(result)


def _cell(value: Any) -> str:
    if isinstance(value, (dict, list)):
        raise AssertionError(f"--output text of a nested value {value!r}: query scalars")
    return "None" if value is None else str(value)


def _scenario(state_dir: Path) -> dict[str, Any]:
    scenario: dict[str, Any] = json.loads((state_dir / "scenario.json").read_text())
    return scenario


def _groups(state_dir: Path, params: dict[str, Any]) -> dict[str, Any]:
    found = _scenario(state_dir)["groups"]
    for wanted in params.get("Filters", []):
        key = wanted["Name"].removeprefix("tag:")
        assert wanted["Name"].startswith("tag:"), f"the fake filters by tag only, not {wanted['Name']}"
        found = [g for g in found if g["tags"].get(key) in wanted["Values"]]
    if "AutoScalingGroupNames" in params:
        found = [g for g in found if g["name"] in params["AutoScalingGroupNames"]]
    return {
        "AutoScalingGroups": [
            {
                "AutoScalingGroupName": g["name"],
                "MinSize": g["min"],
                "MaxSize": g["max"],
                "DesiredCapacity": g["desired"],
                "DefaultInstanceWarmup": g.get("defaultInstanceWarmup", 0),
                "Tags": [
                    {"ResourceId": g["name"], "ResourceType": "auto-scaling-group", "Key": k, "Value": v}
                    for k, v in g["tags"].items()
                ],
            }
            for g in found
        ]
    }


def _refreshes(state_dir: Path, params: dict[str, Any]) -> dict[str, Any]:
    group = params["AutoScalingGroupName"]
    scripted = _scenario(state_dir)["refreshes"].get(group, [])
    steps_path = state_dir / "steps.json"
    steps: dict[str, int] = json.loads(steps_path.read_text()) if steps_path.exists() else {}
    answer = []
    for refresh in scripted:
        step = steps.get(refresh["id"], 0)
        steps[refresh["id"]] = step + 1
        if params.get("InstanceRefreshIds") and refresh["id"] not in params["InstanceRefreshIds"]:
            continue
        timeline = refresh["timeline"]
        entry = {
            "InstanceRefreshId": refresh["id"],
            "AutoScalingGroupName": group,
            "Status": timeline[min(step, len(timeline) - 1)],
            "StartTime": refresh["start"],
            "Preferences": refresh.get("preferences", {}),
        }
        if "statusReason" in refresh:
            entry["StatusReason"] = refresh["statusReason"]
        answer.append(entry)
    steps_path.write_text(json.dumps(steps))
    return {"InstanceRefreshes": answer[: params.get("MaxRecords", 50)]}


ANSWERS = {"DescribeAutoScalingGroups": _groups, "DescribeInstanceRefreshes": _refreshes}
