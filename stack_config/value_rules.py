"""The rules behind the value types in stack_config.fields: each raises ValueError with a message in words."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import unicodedata

from rendering.inputs import METADATA_TOKENS
from rendering.rancheros_host import RESERVED_VARIABLE_PREFIX, RESERVED_VARIABLES
from stack_config.instance_types import instance_type_problem
from stack_config.quoting import quoted

TAG_KEY_LIMIT = 127  # EC2's limit; IAM, S3, ELBv2 and Auto Scaling allow 128
TAG_KEY_CHARACTERS = "ASCII letters, digits and + - = . _ : @"
TAG_VALUE_CHARACTERS = "letters, digits, spaces and _ . : / = + - @"
# distribution/reference: [domain[:port]/]path-component(/path-component)*:tag, lower-case domains as the
# renderer accepts them; a tag has at most 128 characters, a name at most 255.
_DOMAIN_COMPONENT = r"(?:[a-z0-9]|[a-z0-9][a-z0-9-]*[a-z0-9])"
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
IMAGE_REFERENCE = (
    rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*(?::[0-9]+)?/)?"
    rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*:[A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}"
)
IMAGE_NAME_LIMIT = 255
# Variables are exported in login shells on the node: these would change the shell or the docker CLI.
SHELL_VARIABLES = frozenset(
    [
        "HOME",
        "IFS",
        "PS1",
        "PS2",
        "PS4",
        "ENV",
        "SHELL",
        "USER",
        "LOGNAME",
        "PWD",
        "OLDPWD",
        "TERM",
        "HOSTNAME",
        "SHLVL",
        "TMPDIR",
        "LANG",
        "TZ",
        "CDPATH",
        "MAIL",
        "HISTFILE",
        "PROMPT_COMMAND",
        "DOCKER_HOST",
        "DOCKER_CONFIG",
        "DOCKER_TLS_VERIFY",
        "DOCKER_CERT_PATH",
    ]
)
_BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")  # sthree-configurator is covered by sthree-
_BUCKET_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def ipv4_cidr(value: str) -> str:
    if ":" in value:
        raise ValueError(
            f"{quoted(value)} is an IPv6 block; the cluster's security-group rules are IPv4 only, list IPv4 blocks"
        )
    try:
        return str(ipaddress.IPv4Network(value, strict=True))
    except ValueError as error:
        reason = str(error).replace(value, "it")  # ipaddress repeats the whole input
        raise ValueError(
            f"{quoted(value)} is not a CIDR block ({quoted(reason)[1:-1]}); use a network address such as 10.0.0.0/16"
        ) from None


def environment(value: str) -> str:
    # AWS names start with it: load balancer names may not start with "internal-", security groups with "sg-".
    if value.startswith(("internal", "sg-")):
        raise ValueError(f"{quoted(value)} cannot start AWS resource names; avoid the prefixes 'internal' and 'sg-'")
    return value


def instance_type(value: str) -> str:
    problem = instance_type_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def docker_label_key(value: str) -> str:
    if value in ("docker.environment", "docker.role"):
        raise ValueError(f"{quoted(value)} is set from cluster.environment and the group's role; remove it")
    return value


def tag_key(value: str) -> str:
    if not 1 <= len(value) <= TAG_KEY_LIMIT:
        raise ValueError(f"tag key {quoted(value)} has {len(value)} characters; EC2 allows 1 to {TAG_KEY_LIMIT}")
    if value.lower().startswith("aws:"):
        raise ValueError(f"tag key {quoted(value)} uses the reserved 'aws:' prefix; choose another prefix")
    # Instances expose their tags in instance metadata, which refuses other key characters (launches fail).
    if not re.fullmatch(r"[A-Za-z0-9+=._:@-]+", value) or value in (".", "..", "_index"):
        raise ValueError(f"tag key {quoted(value)} has a character AWS refuses; use {TAG_KEY_CHARACTERS}")
    return value


def tag_value(value: str) -> str:
    if len(value) > 256:
        raise ValueError(f"the value has {len(value)} characters; AWS tag values allow at most 256")
    if value.lower().startswith("aws:"):
        raise ValueError(f"{quoted(value)} starts with 'aws:', which AWS reserves; choose another value")
    bad = [c for c in value if not _tag_character(c)]
    if bad:
        raise ValueError(f"{quoted(value)} has the character {bad[0]!r}, which AWS refuses; use {TAG_VALUE_CHARACTERS}")
    return value


def _tag_character(c: str) -> bool:
    """IAM, ELBv2 and S3 tags allow `[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]`; of the separators (Z) only spaces, since line
    and paragraph separators would break the rendered variable files."""
    return unicodedata.category(c)[0] in "LN" or unicodedata.category(c) == "Zs" or c in "_.:/=+-@"


def image_reference(value: str) -> str:
    name, _, tag = value.rpartition(":")
    if not re.fullmatch(IMAGE_REFERENCE, value):
        raise ValueError(
            f"{quoted(value)} is not an image reference with a tag; expected [registry[:port]/]name:tag, e.g. "
            "registry:2.8.3 (Docker's reference grammar)"
        )
    if len(name) > IMAGE_NAME_LIMIT:
        raise ValueError(f"the image name has {len(name)} characters; Docker allows at most {IMAGE_NAME_LIMIT}")
    if tag == "latest":
        raise ValueError(f"{quoted(value)} is not pinned; name a version tag so every node runs the same image")
    return value


def variable_name(value: str) -> str:
    if value in RESERVED_VARIABLES or value.startswith(RESERVED_VARIABLE_PREFIX):
        raise ValueError(f"{value} is set on every node by RancherOS or node-bootstrap; choose another name")
    if value in SHELL_VARIABLES or value.startswith(("LC_", "LD_", "BASH_")):
        raise ValueError(f"{value} changes how shells and programs on the node behave; choose another name")
    return value


def bucket_name(value: str) -> str:
    problem = _bucket_problem(value)
    if problem is not None:
        raise ValueError(f"{quoted(value)} {problem}; see S3's general purpose bucket naming rules")
    return value


def _bucket_problem(value: str) -> str | None:
    if not 3 <= len(value) <= 63:
        return f"has {len(value)} characters, S3 allows 3 to 63"
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]*[a-z0-9]", value):
        return "is not lower-case letters, digits, '.' and '-', starting and ending with a letter or digit"
    if ".." in value:
        return "has two adjacent periods"
    if re.fullmatch(r"[0-9]+(\.[0-9]+){3}", value):
        return "is formatted as an IP address"
    reserved = [p for p in _BUCKET_PREFIXES if value.startswith(p)] + [s for s in _BUCKET_SUFFIXES if value.endswith(s)]
    return f"uses the reserved {reserved[0]!r}" if reserved else None


def secret_text(value: str) -> str:
    # Never quoted in a message: the value is a secret.
    if any(token in value for token in METADATA_TOKENS):
        raise ValueError("contains a $..._ipv4/6 token, which RancherOS replaces with instance metadata; use another")
    if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in value):
        raise ValueError("contains a line break or control character; use one line of printable text")
    if value != value.strip() or not 16 <= len(value) <= 256:
        raise ValueError(
            f"has {len(value)} characters or surrounding whitespace; use 16-256 characters, e.g. `openssl rand -hex 32`"
        )
    return value


GOSSIP_KEY_BYTES = 32  # Consul accepts 16, 24 or 32; AES-256 is what `consul keygen` makes


def gossip_key(value: str) -> str:
    # Never quoted in a message: the value is a secret.
    try:
        size = len(base64.b64decode(value, validate=True))
    except binascii.Error:
        size = -1
    if size != GOSSIP_KEY_BYTES:
        raise ValueError(
            f"is not base64 of {GOSSIP_KEY_BYTES} bytes; generate one with `openssl rand -base64 32` or `consul keygen`"
        )
    return value
