"""Generated mutations of both stack files, one test per class of mistake: each is refused with one message in
the `Pulumi.<stack>.yaml: <key.path>: <what>; <allowed>` form naming the key, with nothing quoted at length;
and valid variations (keys reordered, a group copied, sizes moved, bare keys) are accepted."""

from __future__ import annotations

import ipaddress
import random
import re
import subprocess
import sys
import unicodedata
from pathlib import Path
from typing import Any

import pulumi
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from offline.harness import StackRun, run_stack
from offline.program_copy import copy_program
from offline.stack_files import PROJECT_ROOT, StackFileError, stack_config_map
from offline.stack_yaml import MAX_DEPTH
from rendering.rancheros_host import RESERVED_VARIABLES
from stack_config.loader import ConfigError, load_stack_config
from stack_config.value_rules import SHELL_VARIABLES
from tests.cloud_config_checks import incompressible
from tests.plan_runs import plan_in_process
from tests.stack_mutations import (
    MESSAGE_LIMIT,
    Path_,
    Raw,
    at,
    config_paths,
    document,
    dump,
    key_path,
    outcome,
    project,
    replaced,
)

STACKS = ("staging", "production")
NAMESPACE = "swarm-cluster"
GENERATED = settings(
    max_examples=8, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
stacks = st.sampled_from(STACKS)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return project(tmp_path_factory.mktemp("stack-files"))


def _leaves(data: dict[str, Any], kind: type = str) -> list[Path_]:
    """Paths to scalar values of `kind`, leaving out ciphertext, which is not ours to read."""
    return config_paths(data, lambda p, v: isinstance(v, kind) and not isinstance(v, bool) and "secure" not in p)


def _ending(data: dict[str, Any], *names: str) -> list[Path_]:
    return config_paths(data, lambda p, v: isinstance(v, str) and any(str(p[-1]) == n or _in_list(p, n) for n in names))


def _in_list(path: Path_, name: str) -> bool:
    return isinstance(path[-1], int) and path[-2] == name


# 1. Files the reader must refuse cleanly: encoding, keys, YAML types, nesting, aliases.


@GENERATED
@given(stack=stacks, data=st.data())
def test_a_control_character_names_its_line(folder: Path, stack: str, data: st.DataObject) -> None:
    """YAML allows no control characters but tab and line breaks (yaml.v3 refuses them too), and counts lines at
    each of its line breaks, which a file saved elsewhere may use."""
    eol = data.draw(st.sampled_from(["\n", "\r\n", "\r", "\x85", "\u2028"]))
    text = (PROJECT_ROOT / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8").replace("\n", eol)
    where = data.draw(st.integers(0, len(text)).filter(lambda i: text[i - 1 : i + 1] != "\r\n"))
    bad = data.draw(st.sampled_from(["\x00", "\x07", "\x1b", "\x7f", "\x9b", "\ufffe"]))
    [line] = outcome(folder, stack, text[:where] + bad + text[where:]).problems()
    line_number = text[:where].count(eol) + 1
    assert line.startswith(f"Pulumi.{stack}.yaml: (file): line {line_number}: character U+{ord(bad):04X} ")


@GENERATED
@given(stack=stacks, data=st.data(), bad=st.sampled_from(["@", "`", "\t"]))
def test_a_character_that_cannot_start_a_key_is_named(folder: Path, stack: str, data: st.DataObject, bad: str) -> None:
    lines = (PROJECT_ROOT / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8").split("\n")
    index = data.draw(st.sampled_from([i for i, text in enumerate(lines) if text.strip()[:1].isalpha()]))
    lines[index] = bad + lines[index]
    [line] = outcome(folder, stack, "\n".join(lines)).problems()
    assert line.startswith(f"Pulumi.{stack}.yaml: (file): line {index + 1}: not valid YAML (")
    assert repr(bad) in line or (bad == "\t" and "tab character" in line), line


@GENERATED
@given(stack=stacks, data=st.data())
def test_a_file_that_is_not_utf8_names_its_line(folder: Path, stack: str, data: st.DataObject) -> None:
    text = (PROJECT_ROOT / f"Pulumi.{stack}.yaml").read_bytes()
    where = data.draw(st.integers(0, len(text)))
    bad = data.draw(st.sampled_from([b"\xff", b"\xc3(", b"\xed\xa0\x80", b"\x80", b"\xf8\x88\x80\x80\x80"]))
    [line] = outcome(folder, stack, text[:where] + bad + text[where:]).problems()
    line_number = text[:where].count(b"\n") + 1
    assert line.startswith(f"Pulumi.{stack}.yaml: (file): line {line_number}: byte 0x")
    assert "not UTF-8" in line


@GENERATED
@given(stack=stacks, data=st.data())
def test_a_key_that_is_not_text_is_named(folder: Path, stack: str, data: st.DataObject) -> None:
    base = document(stack)
    mappings = [("config",), *config_paths(base, lambda p, v: isinstance(v, dict) and "secure" not in v)]
    path = data.draw(st.sampled_from(mappings))
    key = data.draw(
        st.one_of(st.integers(), st.booleans(), st.none(), st.floats(allow_nan=False, allow_infinity=False))
    )
    mutated = replaced(base, path, {**at(base, path), key: "x"})
    result = outcome(folder, stack, dump(mutated))
    assert result.names(stack, key_path(path) or "config"), result.message
    assert "a key must be text" in result.message


TAGS = {
    "binary": Raw("tag:yaml.org,2002:binary", "aGVsbG8="),
    "timestamp": Raw("tag:yaml.org,2002:timestamp", "2024-01-01"),
    "set": Raw("tag:yaml.org,2002:set", {"a": None}),
    "omap": Raw("tag:yaml.org,2002:omap", "x"),
    "python": Raw("tag:yaml.org,2002:python/tuple", "x"),
    "custom": Raw("!Ref", "x"),
}


@GENERATED
@given(stack=stacks, data=st.data(), tag=st.sampled_from(sorted(TAGS)))
def test_a_yaml_type_json_cannot_carry_is_named(folder: Path, stack: str, data: st.DataObject, tag: str) -> None:
    base = document(stack)
    path = data.draw(st.sampled_from(_leaves(base, object)))
    result = outcome(folder, stack, dump(replaced(base, path, TAGS[tag])))
    assert result.names(stack, key_path(path)), result.message
    assert "is not a JSON type" in result.message


@GENERATED
@given(stack=stacks, data=st.data(), depth=st.integers(MAX_DEPTH + 1, 1_500))
def test_nesting_past_any_stack_file_is_refused(folder: Path, stack: str, data: st.DataObject, depth: int) -> None:
    base = document(stack)
    path = data.draw(st.sampled_from(_leaves(base, object)))
    text = dump(replaced(base, path, "DEEP")).replace("DEEP", "[" * depth + "]" * depth, 1)
    [line] = outcome(folder, stack, text).problems()
    assert f"nested more than {MAX_DEPTH} levels deep" in line


def _bomb(levels: int) -> str:
    values = ", ".join(["x"] * 10)
    items = [f"&a0 [{values}]"] + [f"&a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, levels)]
    return "[" + ", ".join(items) + "]"


@GENERATED
@given(stack=stacks, data=st.data(), levels=st.integers(5, 7), cycle=st.booleans())
def test_alias_bombs_and_cycles_are_refused_briefly(
    folder: Path, stack: str, data: st.DataObject, levels: int, cycle: bool
) -> None:
    base = document(stack)
    path = data.draw(st.sampled_from(_leaves(base, object)))
    text = dump(replaced(base, path, "BOMB")).replace("BOMB", "&r [*r]" if cycle else _bomb(levels), 1)
    result = outcome(folder, stack, text)
    assert result.names_under(stack, key_path(path)), result.message
    assert ("refers to the value that contains it" if cycle else "aliases expand to more than") in result.message


@GENERATED
@given(stack=stacks, data=st.data())
def test_a_key_given_twice_is_named(folder: Path, stack: str, data: st.DataObject) -> None:
    base = document(stack)
    key = data.draw(st.sampled_from(sorted(base["config"])))
    result = outcome(folder, stack, dump(base) + f"  {key}: {{}}\n")
    assert result.names(stack, key), result.message
    assert "given twice" in result.message


@settings(GENERATED, phases=[Phase.explicit, Phase.generate])  # shrinking 100 kB inputs takes minutes
@given(stack=stacks, data=st.data(), size=st.integers(10_000, 100_000), as_key=st.booleans())
def test_huge_input_is_not_echoed(folder: Path, stack: str, data: st.DataObject, size: int, as_key: bool) -> None:
    base = document(stack)
    if as_key:
        path = data.draw(st.sampled_from(config_paths(base, lambda p, v: isinstance(v, dict) and "secure" not in v)))
        mutated = replaced(base, path, {**at(base, path), "k" * size: "v"})
    else:
        path = data.draw(st.sampled_from(_leaves(base)))
        mutated = replaced(base, path, "v" * size)
    result = outcome(folder, stack, dump(mutated))
    assert result.names(stack, key_path(path)) or as_key, result.message  # problems() caps the message size


# 2. Keys in the wrong namespace.


def _near(namespace: str) -> st.SearchStrategy[str]:
    """Misspellings of `namespace`: separator and case variants, and one-character edits."""
    variants = ["swarm_cluster", "swarmcluster", "swarm.cluster", "Swarm-Cluster", "SWARM-CLUSTER", "swarm--cluster"]
    position = st.integers(0, len(namespace) - 1)
    letter = st.sampled_from("abcdefghijklmnopqrstuvwxyz-_")
    edits = st.one_of(
        position.map(lambda i: namespace[:i] + namespace[i + 1 :]),
        st.tuples(position, letter).map(lambda e: namespace[: e[0]] + e[1] + namespace[e[0] + 1 :]),
        st.tuples(position, letter).map(lambda e: namespace[: e[0]] + e[1] + namespace[e[0] :]),
    )
    return st.one_of(st.sampled_from(variants), edits).filter(lambda n: n != namespace)


@GENERATED
@given(stack=stacks, data=st.data(), typo=_near(NAMESPACE))
def test_a_namespace_typo_is_refused(folder: Path, stack: str, data: st.DataObject, typo: str) -> None:
    base = document(stack)
    key = data.draw(st.sampled_from(sorted(k for k in base["config"] if k.startswith(f"{NAMESPACE}:"))))
    config = {(f"{typo}:{key.partition(':')[2]}" if k == key else k): v for k, v in base["config"].items()}
    result = outcome(folder, stack, dump({**base, "config": config}))
    typo_key = f"{typo}:{key.partition(':')[2]}"
    assert result.names(stack, typo_key), result.message
    assert f"write {key}" in result.message


@GENERATED
@given(stack=stacks, data=st.data())
def test_a_key_with_and_without_namespace_is_refused(folder: Path, stack: str, data: st.DataObject) -> None:
    base = document(stack)
    key = data.draw(st.sampled_from(sorted(k for k in base["config"] if k.startswith(f"{NAMESPACE}:"))))
    config = {**base["config"], key.partition(":")[2]: base["config"][key]}
    [line] = outcome(folder, stack, dump({**base, "config": config})).problems()
    assert line.startswith(f"Pulumi.{stack}.yaml: {key}: given twice")


# 3. Values only a renderer, AWS or a node would have refused.


@GENERATED
@given(stack=stacks, data=st.data())
def test_variables_a_node_or_its_shells_own_are_refused(folder: Path, stack: str, data: st.DataObject) -> None:
    base = document(stack)
    path = data.draw(st.sampled_from(_ending(base, "variable")))
    names = sorted(RESERVED_VARIABLES | SHELL_VARIABLES)
    suffix = st.from_regex(r"[A-Z0-9_]{1,8}", fullmatch=True)
    name = data.draw(
        st.one_of(st.sampled_from(names), st.tuples(st.sampled_from(["AWS_", "LD_", "LC_"]), suffix).map("".join))
    )
    result = outcome(folder, stack, dump(replaced(base, path, name)))
    assert result.names(stack, key_path(path)), result.message


ALLOWED_TAG_CHARACTERS = "_.:/=+-@ "


def _refused_tag_character(c: str) -> bool:
    category = unicodedata.category(c)
    return not (category[0] in "LN" or category == "Zs" or c in ALLOWED_TAG_CHARACTERS)


@GENERATED
@given(stack=stacks, data=st.data(), bad=st.characters(codec="utf-8").filter(_refused_tag_character))
def test_tag_values_aws_refuses_are_named(folder: Path, stack: str, data: st.DataObject, bad: str) -> None:
    base = document(stack)
    tag_values = config_paths(base, lambda p, v: isinstance(v, str) and (p[-1] == "value" or p[1].endswith(":tags")))
    path = data.draw(st.sampled_from(tag_values))
    value = at(base, path)
    where = data.draw(st.integers(0, len(value)))
    result = outcome(folder, stack, dump(replaced(base, path, value[:where] + bad + value[where:])))
    assert result.names(stack, key_path(path)), result.message


@GENERATED
@given(
    stack=stacks,
    data=st.data(),
    key=st.one_of(
        st.text(min_size=1, max_size=20).filter(
            lambda k: any(not (c.isascii() and (c.isalnum() or c in "+=._:@-")) for c in k)
        ),
        st.from_regex(r"[aA][wW][sS]:[a-z]{1,8}", fullmatch=True),
        st.integers(128, 400).map(lambda n: "k" * n),
    ),
)
def test_tag_keys_aws_refuses_are_named(folder: Path, stack: str, data: st.DataObject, key: str) -> None:
    base = document(stack)
    in_tags = data.draw(st.booleans())
    if in_tags:
        mutated = replaced(base, ("config", f"{NAMESPACE}:tags"), {**base["config"][f"{NAMESPACE}:tags"], key: "v"})
        where = f"{NAMESPACE}:tags."
    else:
        path = data.draw(st.sampled_from(_ending(base, "tag")))
        mutated, where = replaced(base, path, key), key_path(path)
    result = outcome(folder, stack, dump(mutated))
    assert result.names_under(stack, where), result.message


@GENERATED
@given(stack=stacks, data=st.data())
def test_image_references_docker_refuses_are_named(folder: Path, stack: str, data: st.DataObject) -> None:
    base = document(stack)
    path = data.draw(st.sampled_from(_ending(base, "image")))
    name, _, tag = at(base, path).rpartition(":")
    image = data.draw(
        st.sampled_from(
            [
                f"{name}:{'t' * 129}",
                f"{'a' * 250}/{name}:{tag}",
                f"{name.upper()}:{tag}",
                f"{name}..x:{tag}",
                f"{name}-:{tag}",
                f"{name}:latest",
                f"{name}:-{tag}",
                name,
            ]
        )
    )
    result = outcome(folder, stack, dump(replaced(base, path, image)))
    assert result.names(stack, key_path(path)), result.message


@GENERATED
@given(stack=stacks, data=st.data())
def test_duplicate_security_group_rules_are_named(folder: Path, stack: str, data: st.DataObject) -> None:
    base = document(stack)
    lists = config_paths(
        base, lambda p, v: bool(v) and p[-1] in ("adminCidrs", "adminSecurityGroupIds", "sshCidrs", "cidrs")
    )
    ingress = config_paths(base, lambda p, v: p[-1] == "ingress" and bool(v))
    path = data.draw(st.sampled_from(lists + ingress))
    items = at(base, path)
    copied = data.draw(st.sampled_from(items))
    if path[-1] == "ingress":  # the same port and protocol from elsewhere: still one rule name
        copied = {**copied, "cidrs": ["10.99.0.0/16"]}
    result = outcome(folder, stack, dump(replaced(base, path, [*items, copied])))
    suffix = ".port" if path[-1] == "ingress" else ""
    assert result.names(stack, f"{key_path(path)}[{len(items)}]{suffix}"), result.message


@GENERATED
@given(
    stack=stacks,
    data=st.data(),
    network=st.tuples(st.ip_addresses(v=6), st.integers(0, 128)).map(
        lambda n: str(ipaddress.IPv6Network((n[0], n[1]), strict=False))
    ),
)
def test_ipv6_blocks_are_refused_clearly(folder: Path, stack: str, data: st.DataObject, network: str) -> None:
    base = document(stack)
    path = data.draw(st.sampled_from(_ending(base, "cidr", "vpcCidr", "adminCidrs", "sshCidrs", "cidrs")))
    result = outcome(folder, stack, dump(replaced(base, path, network)))
    assert result.names(stack, key_path(path)), result.message
    assert "IPv6" in result.message


@GENERATED
@given(
    stack=stacks,
    key_id=st.one_of(
        st.text("0123456789abcdefABCDEF-", min_size=1, max_size=40),
        st.from_regex(r"mrk-[0-9a-f]{1,31}", fullmatch=True),
        st.just("alias/ebs"),
    ),
    region=st.sampled_from(["eu-west-1", "us-east-1", "eu-central-1"]),
)
def test_kms_keys_aws_refuses_are_named(folder: Path, stack: str, key_id: str, region: str) -> None:
    base = document(stack)
    if region != "eu-west-1":  # another region than the stack's, with a well-formed key id
        key_id = "5f0c9a2e-8b1d-4c7e-9a36-2d4b8e1f0c77"
    section = f"{NAMESPACE}:rancheros"
    arn = f"arn:aws:kms:{region}:123456789012:key/{key_id}"
    result = outcome(
        folder, stack, dump(replaced(base, ("config", section), {**base["config"][section], "kmsKeyArn": arn}))
    )
    well_formed = re.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}|mrk-[0-9a-f]{32}", key_id)
    if region == "eu-west-1" and well_formed:
        assert result.config is not None, result.message
    else:
        assert result.names(stack, f"{section}.kmsKeyArn"), result.message


@GENERATED
@given(
    stack=stacks,
    name=st.one_of(
        st.sampled_from(
            ["a..b", "192.168.5.4", "xn--bucket", "sthree-bucket", "amzn-s3-demo-x", "b-s3alias", "b--ol-s3"]
        ),
        st.sampled_from(["b.mrap", "b--x-s3", "b--table-s3", "Bucket", "-bucket", "bucket-", "ab", "b" * 64, "b_b"]),
    ),
)
def test_bucket_names_s3_refuses_are_named(folder: Path, stack: str, name: str) -> None:
    base = document(stack)
    section = f"{NAMESPACE}:registry"
    mutated = replaced(base, ("config", section), {**base["config"][section], "bucketName": name})
    result = outcome(folder, stack, dump(mutated))
    assert result.names(stack, f"{section}.bucketName"), result.message


# 4. Valid variations stay valid.


def _shuffled(data: Any, rng: random.Random) -> Any:
    if isinstance(data, dict):
        items = list(data.items())
        rng.shuffle(items)
        return {k: _shuffled(v, rng) for k, v in items}
    if isinstance(data, list):
        return [_shuffled(v, rng) for v in data]
    return data


@GENERATED
@given(stack=stacks, rng=st.randoms(use_true_random=False), bare=st.sets(st.integers(0, 20)))
def test_reordered_and_bare_keys_are_the_same_config(
    folder: Path, stack: str, rng: random.Random, bare: set[int]
) -> None:
    base = document(stack)
    original = outcome(folder, stack, dump(base)).config
    config = {
        (k.partition(":")[2] if k.startswith(f"{NAMESPACE}:") and i in bare else k): v
        for i, (k, v) in enumerate(base["config"].items())
    }
    varied = outcome(folder, stack, dump(_shuffled({**base, "config": config}, rng)))
    assert varied.config == original, varied.message


@GENERATED
@given(stack=stacks, data=st.data(), name=st.from_regex(r"[a-z][a-z0-9]{1,7}", fullmatch=True))
def test_a_group_copied_under_a_new_name_is_accepted(folder: Path, stack: str, data: st.DataObject, name: str) -> None:
    base = document(stack)
    groups = base["config"][f"{NAMESPACE}:nodeGroups"]
    taken = {g["name"] for g in groups}
    if name in taken or name.startswith(("cluster", "nodes", "consul", "registry", "swarm")):
        return
    group = dict(data.draw(st.sampled_from([g for g in groups if not g.get("swarmManager")])))
    mutated = replaced(base, ("config", f"{NAMESPACE}:nodeGroups"), [*groups, {**group, "name": name}])
    result = outcome(folder, stack, dump(mutated))
    assert result.config is not None, result.message
    assert [g.name for g in result.config.nodeGroups][-1] == name


@GENERATED
@given(stack=stacks, data=st.data(), sizes=st.lists(st.integers(0, 100), min_size=3, max_size=3))
def test_sizes_moved_within_bounds_are_accepted(
    folder: Path, stack: str, data: st.DataObject, sizes: list[int]
) -> None:
    base = document(stack)
    groups = base["config"][f"{NAMESPACE}:nodeGroups"]
    index = data.draw(st.sampled_from([i for i, g in enumerate(groups) if not g.get("swarmManager")]))
    low, desired, high = sorted(sizes)
    changed = {**groups[index], "minSize": low, "desiredCapacity": desired, "maxSize": max(high, 1)}
    result = outcome(folder, stack, dump(replaced(base, ("config", f"{NAMESPACE}:nodeGroups", index), changed)))
    assert result.config is not None, result.message
    assert result.config.nodeGroups[index].desiredCapacity == desired


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("text", ["2024-01-01", "2024-01-01T10:00:00Z", "yes", "on", "12:30:00"])
def test_plain_scalars_the_cli_reads_as_text_stay_text(folder: Path, stack: str, text: str) -> None:
    base = document(stack)
    tags = {**base["config"][f"{NAMESPACE}:tags"], "Since": "PLAIN"}
    result = outcome(folder, stack, dump(replaced(base, ("config", f"{NAMESPACE}:tags"), tags)).replace("PLAIN", text))
    assert result.config is not None, result.message
    assert result.config.tags["Since"] == text


# 5. The same classes through the whole program and the offline plan: exit 2, one message, nothing declared.


def _edit(stack: str, section: str, change: dict[str, Any]) -> str:
    base = document(stack)
    key = f"{NAMESPACE}:{section}"
    return dump(replaced(base, ("config", key), {**base["config"][key], **change}))


def _groups(stack: str, edit: Any) -> str:
    base = document(stack)
    key = f"{NAMESPACE}:nodeGroups"
    groups = [dict(g) for g in base["config"][key]]
    edit(groups)
    return dump(replaced(base, ("config", key), groups))


EVERY_CLASS: list[tuple[str, str, Any]] = [
    (
        "staging",
        "(file)",
        lambda: (PROJECT_ROOT / "Pulumi.staging.yaml").read_bytes().replace(b"eu-west-1a", b"eu-w\xe9st-1a"),
    ),
    ("production", "config", lambda: dump(document("production")) + "  7: seven\n"),
    (
        "staging",
        "swarm-cluster:tags.Owner",
        lambda: _edit("staging", "tags", {"Owner": Raw("tag:yaml.org,2002:binary", "aGk=")}),
    ),
    ("production", "(file)", lambda: dump(document("production")) + "  deep: " + "[" * 1500 + "]" * 1500 + "\n"),
    ("staging", "bomb", lambda: dump(document("staging")) + "  bomb: " + _bomb(7) + "\n"),
    (
        "production",
        "swarm_cluster:consul",
        lambda: dump(document("production")).replace("swarm-cluster:consul:", "swarm_cluster:consul:"),
    ),
    (
        "staging",
        "swarm-cluster:tagVariables[0].variable",
        lambda: _edit_list("staging", "tagVariables", 0, variable="LD_PRELOAD"),
    ),
    ("production", "swarm-cluster:tags.Team", lambda: _edit("production", "tags", {"Team": "ops;rm -rf"})),
    ("staging", "swarm-cluster:swarm.image", lambda: _edit("staging", "swarm", {"image": "swarm:" + "1" * 129})),
    (
        "production",
        "swarm-cluster:access.adminCidrs[1]",
        lambda: _edit("production", "access", {"adminCidrs": ["10.8.0.0/16"] * 2}),
    ),
    ("staging", "swarm-cluster:nodeGroups[1].ingress[2].port", lambda: _groups("staging", _same_port)),
    ("production", "swarm-cluster:network.vpcCidr", lambda: _edit("production", "network", {"vpcCidr": "fd00::/48"})),
    (
        "production",
        "swarm-cluster:rancheros.kmsKeyArn",
        lambda: _edit("production", "rancheros", {"kmsKeyArn": KEY_IN_US}),
    ),
    ("staging", "swarm-cluster:registry.bucketName", lambda: _edit("staging", "registry", {"bucketName": "a..b"})),
]
KEY_IN_US = "arn:aws:kms:us-east-1:123456789012:key/5f0c9a2e-8b1d-4c7e-9a36-2d4b8e1f0c77"


def _edit_list(stack: str, section: str, index: int, **change: str) -> str:
    base = document(stack)
    key = f"{NAMESPACE}:{section}"
    items = [dict(item) for item in base["config"][key]]
    items[index].update(change)
    return dump(replaced(base, ("config", key), items))


def _same_port(groups: list[dict[str, Any]]) -> None:
    groups[1]["ingress"] = [*groups[1]["ingress"], {**groups[1]["ingress"][0], "cidrs": ["10.99.0.0/16"]}]


@pytest.mark.parametrize(("stack", "key", "text"), EVERY_CLASS, ids=[case[1] for case in EVERY_CLASS])
def test_every_class_exits_2_with_one_message_and_declares_nothing(
    tmp_path: Path, stack: str, key: str, text: Any
) -> None:
    (tmp_path / "Pulumi.yaml").write_text((PROJECT_ROOT / "Pulumi.yaml").read_text())
    (tmp_path / "__main__.py").write_text((PROJECT_ROOT / "__main__.py").read_text())
    content = text()
    stack_file = tmp_path / f"Pulumi.{stack}.yaml"
    stack_file.write_bytes(content if isinstance(content, bytes) else content.encode())
    result = plan_in_process(tmp_path, stack)
    assert result.returncode == 2 and result.stdout == "", result.stdout[-2000:]
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr
    assert len(result.stderr) < MESSAGE_LIMIT
    assert f"Pulumi.{stack}.yaml: {key}" in result.stderr, result.stderr
    assert not (tmp_path / "build").exists()
    partial = StackRun(stack=stack)
    with pytest.raises((pulumi.RunError, StackFileError)):
        run_stack(stack, project_dir=tmp_path, record=partial)
    assert partial.resources == [] and partial.invokes == []


def test_a_renderer_refusal_exits_2_without_asyncio_noise(tmp_path: Path) -> None:
    """What validation cannot foresee (the user-data size) is refused mid-run: still one line, no traceback and
    none of the "Future exception was never retrieved" the pending registrations print at interpreter exit."""
    copy = copy_program(tmp_path)
    # random values: user-data is stored gzip'd, so only text that does not compress reaches the limit
    variables = [{"tag": f"example.s{i}", "variable": f"V_{i}", "value": incompressible(256, i)} for i in range(40)]
    (copy / "Pulumi.staging.yaml").write_text(
        dump(replaced(document("staging"), ("config", f"{NAMESPACE}:tagVariables"), variables))
    )
    result = subprocess.run(
        [sys.executable, "-m", "offline.plan", "staging"], cwd=copy, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2, result.stderr
    named = re.match(
        r"error: Pulumi\.staging\.yaml: swarm-cluster:nodeGroups\[(\d+)\]: node group '(\w+)': ", result.stderr
    )
    assert named is not None, result.stderr
    groups = document("staging")["config"][f"{NAMESPACE}:nodeGroups"]
    assert groups[int(named.group(1))]["name"] == named.group(2), "the key is where the file declares that group"
    assert "EC2 accepts at most 16384 bytes" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


@GENERATED
@given(
    secret=st.one_of(
        st.text(" \t", min_size=1, max_size=40),
        st.tuples(st.text("abcdef0123456789", min_size=8, max_size=40), st.sampled_from(["\n", "\r", "\x00"])).map(
            lambda t: t[0] + t[1] + t[0]
        ),
        st.text("abcdef0123456789", max_size=15),
        st.text("abcdef0123456789", min_size=16, max_size=40).map(lambda s: f" {s} "),
        st.just("0123456789abcdef$private_ipv4"),
    )
)
def test_a_registry_secret_of_the_wrong_shape_is_refused_unquoted(secret: str) -> None:
    values, secrets = stack_config_map("production")
    values["swarm-cluster:registryHttpSecret"] = secret
    with pytest.raises(ConfigError) as caught:
        load_stack_config("production", values, secrets)
    [line] = str(caught.value).splitlines()[1:]
    assert line.startswith("Pulumi.production.yaml: swarm-cluster:registryHttpSecret: ")
    reason = line.partition("registryHttpSecret: ")[2]
    assert all(part not in reason for part in secret.split() if len(part) >= 6), "the secret is never quoted"
