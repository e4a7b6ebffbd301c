"""Validation of what users and callers pass in: names, endpoints, images, free text and SSH keys.

Each check returns its (cleaned) value or raises ValueError naming `what` was wrong, so the renderers
can validate inline while they build a document.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

# RancherOS replaces these anywhere in a config file with instance metadata (see rendering.rancheros_host).
METADATA_TOKENS = ("$private_ipv4", "$public_ipv4", "$private_ipv6", "$public_ipv6")
INSTANCE_ID_LENGTH = len("i-0123456789abcdef0")
HOSTNAME_LIMIT = 63

_NAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")
_DNS_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ENDPOINT = re.compile(rf"{_DNS_LABEL}(\.{_DNS_LABEL})*:(?P<port>[0-9]{{1,5}})")
_IMAGE = re.compile(r"[a-z0-9][a-z0-9._/-]*(:[0-9]+/[a-z0-9._/-]+)?:[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
_SSH_KEY = re.compile(r"(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-\S+) [A-Za-z0-9+/]+={0,2}( [^\r\n]*)?")


def require_name(value: str, what: str) -> str:
    if not _NAME.fullmatch(value):
        raise ValueError(f"{what} {value!r} must be lower-case letters, digits and inner '-'")
    return value


def require_endpoint(value: str, what: str) -> str:
    match = _ENDPOINT.fullmatch(value)
    if not match or not 1 <= int(match["port"]) <= 65535:
        raise ValueError(f"{what} {value!r} must be host:port, e.g. consul.staging.example.internal:8500")
    return value


def require_image(value: str, what: str) -> str:
    if not _IMAGE.fullmatch(value):
        raise ValueError(f"{what} {value!r} must be an image reference with a tag, e.g. registry:2.8.3")
    return value


def require_text(value: str, what: str, *, single_line: bool) -> str:
    """Reject text RancherOS would rewrite ($private_ipv4 ...) or that cannot be an argument/value."""
    for token in METADATA_TOKENS:
        if token in value:
            raise ValueError(f"{what} contains {token!r}, which RancherOS replaces with instance metadata")
    if "\x00" in value:
        raise ValueError(f"{what} contains a NUL character")
    if single_line:
        bad = [c for c in value if unicodedata.category(c) in ("Cc", "Zl", "Zp")]
        if bad:
            raise ValueError(f"{what} contains the control or line-break character {bad[0]!r}")
    return value


def hostname_prefix(environment: str, group: str) -> str:
    prefix = f"{require_name(environment, 'environment')}-{require_name(group, 'group')}"
    longest = len(prefix) + 1 + INSTANCE_ID_LENGTH
    if longest > HOSTNAME_LIMIT:
        raise ValueError(
            f"group {group!r}: hostname {prefix}-<instance-id> can reach {longest} characters; "
            f"the limit is {HOSTNAME_LIMIT}, shorten the environment or group name"
        )
    return prefix


def ssh_keys(keys: Iterable[str]) -> list[str]:
    """Validated keys without duplicates (the schema's uniqueItems), first occurrence kept."""
    unique: list[str] = []
    for key in keys:
        key = key.strip()
        if not _SSH_KEY.fullmatch(key):
            raise ValueError(f"{key[:40]!r}... is not a single-line OpenSSH public key")
        require_text(key, "an SSH public key", single_line=True)
        if key not in unique:
            unique.append(key)
    return unique
