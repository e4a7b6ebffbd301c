"""Classic Swarm 1.2.9's placement expressions, evaluated exactly as its scheduler does.

Sources (docker-archive/classicswarm at v1.2.9): `scheduler/filter/expr.go` (parsing and matching),
`constraint.go`, `affinity.go`, `whitelist.go`, and `cluster/config.go` (where a container keeps them: env
entries `constraint:`/`affinity:`/`whitelist:` at create time, stored by Swarm as JSON lists in the labels
`com.docker.swarm.constraints`/`.affinities`/`.whitelists`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

SWARM_LABELS = "com.docker.swarm."
_KEY = re.compile(r"(?i)[a-z_][a-z0-9\-_.]+")
_VALUE = re.compile(r"(?i)[=!/]?(~)?[a-z0-9:\-_\s.*/()?+\[\]\\^$|]+")


class InvalidExpression(ValueError):
    """Swarm refuses to create a container carrying it."""


@dataclass(frozen=True)
class Expr:
    key: str
    negated: bool
    value: str
    soft: bool

    def match(self, candidates: Iterable[str]) -> bool:
        """expr.go Match: a `/regex/` or a glob in which only `*` is special, searched unanchored by Go's
        regexp (the glob is anchored by ^...$); `!=` is true when no candidate matches."""
        inner = self.value[1:-1] if len(self.value) > 1 and self.value[0] == self.value[-1] == "/" else None
        pattern = inner if inner is not None else "^" + self.value.replace("*", ".*") + "$"
        try:
            regex = re.compile(pattern)
        except re.error:
            found = False
        else:
            found = any(regex.search(c) for c in candidates)
        return found != self.negated

    def __str__(self) -> str:
        return f"{self.key}{'!=' if self.negated else '=='}{'~' if self.soft else ''}{self.value}"


def parse(raw: str) -> Expr:
    """expr.go parseExprs for one entry; "==" is looked for before "!="."""
    for operator in ("==", "!="):
        if operator in raw:
            key, value = raw.split(operator, 1)
            if not _KEY.fullmatch(key):
                raise InvalidExpression(f"key {key!r} is invalid in {raw!r}")
            if not _VALUE.fullmatch(value):
                raise InvalidExpression(f"value {value!r} is invalid in {raw!r}")
            return Expr(key, operator == "!=", value.lstrip("~"), value.startswith("~"))
    raise InvalidExpression(f"{raw!r}: one of the operators == and != is expected")


def expressions(kind: str, labels: Mapping[str, str], env: Iterable[str]) -> tuple[Expr, ...]:
    """A container's expressions of one kind (`constraint`, `affinity`, `whitelist`) from its label and its
    env, as config.go BuildContainerConfig merges them (label first). A label Swarm cannot decode as a JSON
    list of strings is ignored, as Go's json.Unmarshal error is."""
    raw: list[str] = []
    try:
        stored = json.loads(labels.get(f"{SWARM_LABELS}{kind}s", "[]"))
    except ValueError:
        stored = []
    if isinstance(stored, list) and all(isinstance(s, str) for s in stored):
        raw.extend(stored)
    prefix = f"{kind}:"
    raw.extend(e[len(prefix) :] for e in env if e.startswith(prefix))
    return tuple(parse(r) for r in raw)


def constraint_holds(expr: Expr, node_id: str, node_name: str, node_labels: Mapping[str, str]) -> bool:
    """constraint.go: `node` matches the engine's id or name, any other key the engine label (missing: "")."""
    if expr.key == "node":
        return expr.match((node_id, node_name))
    return expr.match((node_labels.get(expr.key, ""),))


def whitelist_holds(expr: Expr, node_name: str) -> bool:
    """whitelist.go: the node's name is one of the '|'-separated names; the operator is not consulted."""
    return node_name in expr.value.split("|")


@dataclass(frozen=True)
class Neighbour:
    """What affinity.go reads of a container already on the candidate node."""

    id: str
    name: str
    labels: Mapping[str, str]


def affinity_holds(expr: Expr, neighbours: Iterable[Neighbour]) -> bool:
    """affinity.go: `container` matches ids and names of the node's containers, any other key their label
    values (a container without the label contributes ""). `image` affinities read the node's images, which
    the caller must handle itself."""
    present = list(neighbours)
    if expr.key == "container":
        return expr.match([v for n in present for v in (n.id, n.name)])
    return expr.match([n.labels.get(expr.key, "") for n in present])
