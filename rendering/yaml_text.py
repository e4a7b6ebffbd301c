"""The `#cloud-config` text itself: YAML that reads back as written, deep merging, EC2's size limit.

User-data is stored gzip'd: RancherOS v1.5.8 gunzips user-data that starts with gzip's magic bytes before
it reads it (cmd/cloudinitsave/cloudinitsave.go:177 and 385-393, `decompressIfGzip`), and EC2's 16 KB
limit applies to the bytes EC2 stores, so a host can carry about three times more text (node agents'
code, boot scripts).
"""

from __future__ import annotations

import base64
import functools
import gzip
import re
import zlib
from collections.abc import Mapping
from typing import Any

import yaml

HEADER = "#cloud-config"
USER_DATA_LIMIT = 16384  # bytes EC2 stores (here: gzip'd), before base64
_GZIP_MAGIC = b"\x1f\x8b"

# Plain scalars that every YAML 1.1 parser (PyYAML, RancherOS's candiedyaml) reads back as this string.
_PLAIN_SAFE = re.compile(r"[A-Za-z_/][A-Za-z0-9_./@+-]*(:[A-Za-z0-9_./@+-]+)*")
_YAML11_WORDS = frozenset(("y", "n", "yes", "no", "true", "false", "on", "off", "null"))


class UserDataTooLarge(ValueError):
    """The rendered user-data does not fit EC2's limit; `what` names the host or node group."""

    def __init__(self, what: str, size: int) -> None:
        super().__init__(
            f"{what}: the user-data is {size} bytes gzip'd; EC2 accepts at most {USER_DATA_LIMIT} bytes before "
            "base64 encoding. Shorten the variables, labels or SSH keys this host carries."
        )
        self.size = size


class _Dumper(yaml.CSafeDumper):
    """Quote every string that is not unambiguously a string to YAML 1.1: a wrong type makes RancherOS
    discard the whole user-data, and Go's YAML reads `y`/`n` as booleans where PyYAML does not.

    libyaml's emitter writes the same text as PyYAML's pure-Python one (the goldens did not change when it
    replaced it) at a hundredth of the time; the round trip in `dump_yaml` still checks every text.
    """

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: _Dumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=_style(value) or None)


@functools.lru_cache(maxsize=4096)
def _style(value: str) -> str:
    if not value.replace("\n", "").isprintable():
        style = '"'  # escapes; PyYAML's single quotes mangle a trailing NEL (U+0085)
    elif "\n" in value:
        style = "|"  # PyYAML falls back to double quotes when a literal block cannot hold the text
    elif _PLAIN_SAFE.fullmatch(value) and value.lower() not in _YAML11_WORDS:
        style = ""
    else:
        style = "'"
    return style


_Dumper.add_representer(str, _represent_str)


def dump_yaml(document: Mapping[str, Any]) -> str:
    """YAML that `yaml.safe_load` turns back into exactly `document` (checked, not assumed)."""
    text = yaml.dump(
        dict(document), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1 << 30, default_flow_style=False
    )
    if yaml.load(text, Loader=yaml.CSafeLoader) != document:  # safe_load's constructors, libyaml's fast parser
        raise AssertionError("the YAML dump does not round-trip; refusing to emit it")
    return text


def finish(document: Mapping[str, Any], what: str) -> str:
    """The user-data text: header, YAML, and the EC2 size check naming `what`."""
    text = f"{HEADER}\n{dump_yaml(document)}"
    size = len(_compress(text))
    if size > USER_DATA_LIMIT:
        raise UserDataTooLarge(what, size)
    return text


def compression_problem() -> str | None:
    """Why this interpreter's gzip output cannot be trusted to match every other deploy's, or None.

    Deflate output is reproducible within zlib itself, not across implementations (zlib-ng's maintainers
    say so by design: zlib-ng/zlib-ng#795; CPython on Windows and Fedora's python link zlib-ng). Other bytes
    for the same text make a new launch template version in every group, so an instance refresh of the
    whole cluster, a lone Consul server included, from a no-op `pulumi up` on such a machine.
    """
    version = zlib.ZLIB_RUNTIME_VERSION
    if "ng" in version.lower() or not re.fullmatch(r"1\.[23]\.\d+(\.\d+)?", version):
        return (
            f"this Python links zlib {version}, whose gzip output differs from zlib's: every launch template's "
            "user-data would change and every group would roll. Run pulumi from CI or a Python linked "
            "against zlib 1.2/1.3 (python.org builds on Linux and macOS, Debian and Ubuntu packages)."
        )
    return None


@functools.lru_cache(maxsize=1024)  # `finish` measures what `encode_user_data` then stores: compress once
def _compress(text: str) -> bytes:
    return gzip.compress(text.encode("utf-8"), 9, mtime=0)  # no timestamp: the same text, the same bytes


def encode_user_data(text: str) -> str:
    """The launch template's `userData`: base64 of the gzip'd text."""
    return base64.b64encode(_compress(text)).decode("ascii")


def decode_user_data(encoded: str) -> str:
    """The text of a base64 `userData`, gzip'd or not (a plan of an older commit has plain text)."""
    raw = base64.b64decode(encoded, validate=True)
    return (gzip.decompress(raw) if raw.startswith(_GZIP_MAGIC) else raw).decode("utf-8")


def merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge mappings; lists concatenate (callers keep them duplicate-free)."""
    out = dict(base)
    for key, value in extra.items():
        old = out.get(key)
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            out[key] = merge(old, value)
        elif isinstance(old, list) and isinstance(value, list):
            out[key] = [*old, *value]
        else:
            out[key] = value
    return out
