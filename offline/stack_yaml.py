"""Read a stack file's YAML the way the Pulumi CLI does, or fail with one message that names the key.

The CLI decodes stack files with gopkg.in/yaml.v3 into Go values and hands objects to the program as
JSON. PyYAML alone differs from that in ways that matter here, so values are built from PyYAML's node
graph with yaml.v3's rules for untagged scalars: only `true`/`false` (any case of those) are booleans
(`yes`, `on` stay text), dates and times stay text, and a key given twice is an error. What JSON cannot
carry (`!!binary`, `!!set`, `!!timestamp`, custom tags, non-text keys, infinities) is refused, and so are
inputs built to exhaust the reader: nesting deeper than any stack file needs, and aliases that expand
to more values than any stack file has (an "alias bomb") or that refer to themselves.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml._yaml import CParser
from yaml.composer import Composer
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from stack_config.quoting import path_part, quoted

MAX_DEPTH = 40
MAX_VALUES = 20_000  # the production stack file has about 1,300; a 200-group benchmark stack about 4,000
_PLAIN = "!plain"  # the tag our resolver gives every untagged, unquoted scalar
_CORE = "tag:yaml.org,2002:"
_NULL = re.compile(r"~|null|Null|NULL|")
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT = re.compile(r"[-+]?(0|[1-9][0-9]*)")
_BASED_INT = re.compile(r"0x[0-9a-fA-F]+|0o[0-7]+|0b[01]+")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_NOT_FINITE = re.compile(r"[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)")


class YamlProblem(Exception):
    """What is wrong, where: `path` is the key path (`config` children as the engine names them)."""

    def __init__(self, path: str, line: int | None, reason: str) -> None:
        self.path, self.line, self.reason = path, line, reason
        super().__init__(f"{path}: {'' if line is None else f'line {line}: '}{reason}")


class _Loader(Composer, CParser, Resolver):
    """Composes nodes only; tags untagged plain scalars as `_PLAIN` so their type is decided below.

    libyaml scans and parses (a sixth of the pure-Python reader's time; its parser keeps its own stack, so no
    input recurses in C); nodes are composed here, in Python, where the depth is counted.
    """

    def __init__(self, text: str) -> None:
        CParser.__init__(self, text)
        Composer.__init__(self)
        Resolver.__init__(self)
        self.depth = 0

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is ScalarNode and implicit[0]:
            return _PLAIN
        return super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                mark = getattr(self.peek_event(), "start_mark", None)
                raise _too_deep(None if mark is None else mark.line + 1)
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


# libyaml does not say which character (PyYAML and yaml.v3 do); the mark's index is a character's with text input.
_NO_TOKEN = "found character that cannot start any token"
_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")  # YAML 1.1's line breaks, as libyaml counts lines
# libyaml's scanner looks ahead for keys in flow collections, so past its own limit (1,000) it refuses before the
# composer has counted to MAX_DEPTH; it is the same problem.
_LIBYAML_TOO_DEEP = "exceeded maximum nesting depth"


def _too_deep(line: int | None) -> YamlProblem:
    return YamlProblem("(file)", line, f"nested more than {MAX_DEPTH} levels deep; no stack file needs that")


def load_yaml(text: str) -> Any:
    """The document as JSON values (dict, list, str, int, float, bool, None), or YamlProblem."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = None if mark is None else mark.line + 1
        if error.problem == _LIBYAML_TOO_DEEP:
            raise _too_deep(line) from None
        problem = error.problem
        if problem == _NO_TOKEN and mark is not None and mark.index < len(text):
            problem = f"found character {text[mark.index]!r} that cannot start any token"  # a tab, most often
        raise YamlProblem("(file)", line, f"not valid YAML ({problem}); fix the syntax") from None
    except yaml.reader.ReaderError as error:  # libyaml's offset counts the UTF-8 bytes it was given
        before = text.encode()[: error.position].decode("utf-8", errors="ignore")
        line = len(_LINE_BREAK.findall(before)) + 1
        reason = f"character U+{error.character:04X} is not allowed in YAML ({error.reason}); remove it"
        raise YamlProblem("(file)", line, reason) from None
    except yaml.YAMLError as error:
        raise YamlProblem("(file)", None, f"not valid YAML ({quoted(str(error))}); fix the syntax") from None
    finally:
        loader.dispose()
    return None if node is None else _Converter().value(node, ())


class _Converter:
    def __init__(self) -> None:
        self.count = 0
        self.open: set[int] = set()  # nodes being converted: an alias back to one of them is a cycle

    def value(self, node: Node, path: tuple[str | int, ...]) -> Any:
        self.count += 1
        line = node.start_mark.line + 1
        if self.count > MAX_VALUES:
            raise YamlProblem(
                _path(path), line, f"aliases expand to more than {MAX_VALUES} values; write the values out"
            )
        if len(path) > MAX_DEPTH:
            raise YamlProblem(_path(path), line, f"aliases nest values more than {MAX_DEPTH} levels deep; flatten them")
        if id(node) in self.open:
            raise YamlProblem(_path(path), line, "an alias refers to the value that contains it; remove the alias")
        if isinstance(node, ScalarNode):
            return _scalar(node, path)
        self.open.add(id(node))
        try:
            if isinstance(node, SequenceNode) and node.tag == _CORE + "seq":
                return [self.value(item, (*path, i)) for i, item in enumerate(node.value)]
            if isinstance(node, MappingNode) and node.tag == _CORE + "map":
                return self.mapping(node, path)
        finally:
            self.open.discard(id(node))
        raise YamlProblem(_path(path), line, f"{_tag(node.tag)} is not a JSON type; use a plain list or mapping")

    def mapping(self, node: MappingNode, path: tuple[str | int, ...]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        lines: dict[str, int] = {}
        merged: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self.key(key_node, path)
            if key == "<<" and key_node.tag == _PLAIN:
                merged = {**self.merge(value_node, path), **merged}
                continue
            if key in result:
                raise YamlProblem(
                    _path((*path, key)),
                    key_node.start_mark.line + 1,
                    f"given twice (also on line {lines[key]}); keep one",
                )
            lines[key] = key_node.start_mark.line + 1
            result[key] = self.value(value_node, (*path, key))
        return {**merged, **result}

    def key(self, node: Node, path: tuple[str | int, ...]) -> str:
        key = _scalar(node, path) if isinstance(node, ScalarNode) else None
        if not isinstance(key, str):
            shown = quoted(key) if isinstance(node, ScalarNode) else "a list or mapping"
            raise YamlProblem(_path(path), node.start_mark.line + 1, f"a key must be text, not {shown}; quote it")
        return key

    def merge(self, node: Node, path: tuple[str | int, ...]) -> dict[str, Any]:
        """`<<: *defaults` (or a list of them), which yaml.v3 supports: earlier mappings win."""
        sources = node.value if isinstance(node, SequenceNode) else [node]
        merged: dict[str, Any] = {}
        for source in reversed(sources):
            value = self.value(source, path)
            if not isinstance(value, dict):
                raise YamlProblem(_path(path), node.start_mark.line + 1, "`<<` merges mappings only; give a mapping")
            merged.update(value)
        return merged


_TAGGED: dict[str, tuple[type, ...]] = {"null": (type(None),), "bool": (bool,), "int": (int,), "float": (int, float)}


def _scalar(node: ScalarNode, path: tuple[str | int, ...]) -> Any:
    text, tag, line = node.value, node.tag, node.start_mark.line + 1
    if tag == _CORE + "str":
        return text
    kind = tag.removeprefix(_CORE)
    if tag != _PLAIN and (not tag.startswith(_CORE) or kind not in _TAGGED):
        raise YamlProblem(_path(path), line, f"{_tag(tag)} is not a JSON type; write the value as plain text")
    if _NOT_FINITE.fullmatch(text):
        raise YamlProblem(_path(path), line, f"{text} is not a finite number; JSON has no such value")
    typed = _plain(text)
    if tag == _PLAIN or (isinstance(typed, _TAGGED[kind]) and not (kind != "bool" and isinstance(typed, bool))):
        return typed
    raise YamlProblem(_path(path), line, f"{quoted(text)} does not fit {_tag(tag)}; fix the value or the tag")


def _plain(text: str) -> Any:
    """yaml.v3's reading of an untagged scalar decoded into an interface{} value."""
    if _NULL.fullmatch(text):
        return None
    if text in _BOOL:
        return _BOOL[text]
    if _INT.fullmatch(text):
        return int(text)
    if _BASED_INT.fullmatch(text):
        return int(text, 0)
    if _FLOAT.fullmatch(text):
        number = float(text)
        # Go's encoding/json writes a whole float64 without a fraction, so the program sees 1, not 1.0.
        return int(number) if number.is_integer() else number
    return text


def _tag(tag: str) -> str:
    return "the YAML tag " + ("!!" + tag.removeprefix(_CORE) if tag.startswith(_CORE) else tag)


def _path(path: tuple[str | int, ...]) -> str:
    """`config.swarm-cluster:nodeGroups.1.name` as the engine names it: `swarm-cluster:nodeGroups[1].name`."""
    parts = list(path[1:]) if path[:1] == ("config",) and len(path) > 1 else list(path)
    text = "".join(f"[{p}]" if isinstance(p, int) else f".{path_part(p)}" for p in parts).lstrip(".")
    return text or "(file)"
