"""Stack files as data to mutate: paths into the YAML structure, and the outcome of reading one as the program does.

`outcome` runs what stands between a stack file and the first resource: the offline reader (the Pulumi CLI's
part) and the config loader (the program's part). Either refuses with one message; anything else escaping
(a traceback) fails the test that called it.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from offline.stack_files import PROJECT_ROOT, StackFileError, stack_config_map
from stack_config.loader import ConfigError, load_stack_config
from stack_config.models import StackConfig

Path_ = tuple[str | int, ...]
# `Pulumi.<stack>.yaml: <key.path>: <what is wrong>; <what is allowed>`, at most so long
PROBLEM_LINE = re.compile(r"Pulumi\.[a-z]+\.yaml: \S+: [^\n]+; [^\n]+")
MESSAGE_LIMIT = 8_000


@dataclass(frozen=True)
class Outcome:
    config: StackConfig | None
    message: str  # empty when the file was accepted

    def problems(self) -> list[str]:
        """The message's problem lines; asserts the shape every refusal must have."""
        assert self.config is None, "the file was accepted"
        assert len(self.message) <= MESSAGE_LIMIT, f"{len(self.message)} characters"
        assert "Traceback" not in self.message
        lines = self.message.splitlines()
        problems = lines[1:] if lines[0].startswith("invalid stack configuration") else lines
        assert problems and all(PROBLEM_LINE.fullmatch(line) for line in problems), self.message
        return problems

    def names(self, stack: str, key_path: str) -> bool:
        return any(line.startswith(f"Pulumi.{stack}.yaml: {key_path}: ") for line in self.problems())

    def names_under(self, stack: str, key_path: str) -> bool:
        """Whether a problem is at `key_path` or inside it."""
        return any(line.startswith(f"Pulumi.{stack}.yaml: {key_path}") for line in self.problems())


def document(stack: str) -> dict[str, Any]:
    """The stack file as data, the caller's to change: a copy, since parsing it again costs a hundred times more."""
    return copy.deepcopy(_parsed(stack))


@cache
def _parsed(stack: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((PROJECT_ROOT / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8"))
    return loaded


def outcome(project: Path, stack: str, text: str | bytes) -> Outcome:
    path = project / f"Pulumi.{stack}.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    try:
        values, secrets = stack_config_map(stack, project)
        return Outcome(load_stack_config(stack, values, secrets), "")
    except (StackFileError, ConfigError) as error:
        return Outcome(None, str(error))


def project(tmp_path: Path) -> Path:
    (tmp_path / "Pulumi.yaml").write_text((PROJECT_ROOT / "Pulumi.yaml").read_text())
    return tmp_path


def dump(data: Any) -> str:
    """YAML text of `data`: libyaml's emitter (PyYAML's text, five times sooner) unless `data` holds a `Raw` node,
    whose tag libyaml would drop where the value alone resolves to it (`!!timestamp '2024-01-01'`)."""
    try:
        return yaml.dump(data, Dumper=yaml.CSafeDumper, sort_keys=False, allow_unicode=True)
    except yaml.representer.RepresenterError:
        return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True)


class Raw:
    """A YAML node written as given: a tag and its scalar text, or a tagged mapping."""

    def __init__(self, tag: str, value: str | dict[str, None]) -> None:
        self.tag, self.value = tag, value


class _Dumper(yaml.SafeDumper):
    pass


def _raw(dumper: yaml.SafeDumper, raw: Raw) -> yaml.Node:
    if isinstance(raw.value, dict):
        return dumper.represent_mapping(raw.tag, raw.value)
    return dumper.represent_scalar(raw.tag, raw.value, style="'")  # quoted, so the tag is always written


_Dumper.add_representer(Raw, _raw)


def paths(data: Any, keep: Callable[[Path_, Any], bool], path: Path_ = ()) -> Iterator[Path_]:
    """Every path under `config` whose value `keep` selects."""
    if path and keep(path, data):
        yield path
    children = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for key, value in children:
        yield from paths(value, keep, (*path, key))


def config_paths(data: dict[str, Any], keep: Callable[[Path_, Any], bool]) -> list[Path_]:
    return [p for p in paths(data, keep) if p[0] == "config" and len(p) > 1]


def replaced(data: dict[str, Any], path: Path_, value: Any) -> dict[str, Any]:
    copied = copy.deepcopy(data)
    node: Any = copied
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return copied


def at(data: Any, path: Path_) -> Any:
    for part in path:
        data = data[part]
    return data


def key_path(path: Path_) -> str:
    """The key path a message names: `swarm-cluster:nodeGroups[1].name` for config/swarm-cluster:nodeGroups/1/name."""
    parts = path[1:] if path[:1] == ("config",) else path
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts).lstrip(".")
