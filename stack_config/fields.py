"""The value types of the stack configuration: each says, in words and as a pattern, what it allows.

`Check` is the one place a format lives: it validates (with a message in words, never a regular
expression), and it puts the pattern and the words into the JSON Schema, from which the README's
configuration reference and the editor schema are generated.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field, GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

from rendering.inputs import METADATA_TOKENS
from stack_config.instance_types import instance_type_problem

QUOTE_LIMIT = 60


def quoted(value: object) -> str:
    """`repr(value)`, cut short: a message must not echo a huge input back at the user."""
    text = repr(value)
    if len(text) <= QUOTE_LIMIT:
        return text
    size = f" ({len(value)} characters)" if isinstance(value, str) else ""
    return f"{text[: QUOTE_LIMIT - 3]}...{size}"


@dataclass(frozen=True)
class Check:
    """A constraint in words. `rule` (raising ValueError with its own message) validates when given, and
    `pattern` (full match) then only informs editors; otherwise `pattern` validates."""

    allowed: str
    pattern: str | None = None
    rule: Callable[[str], str] | None = None

    def validate(self, value: str) -> str:
        if self.rule is not None:
            return self.rule(value)
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            raise ValueError(f"{quoted(value)} is not valid; expected {self.allowed}")
        return value

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(self.validate, handler(source))

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        json_schema = handler(schema)
        if self.pattern is not None:
            # Editors (VS Code's YAML extension, JetBrains) validate this ECMAScript pattern and show the words.
            json_schema["pattern"] = f"^(?:{self.pattern})$"
            json_schema["patternErrorMessage"] = f"expected {self.allowed}"
        json_schema["x-allowed"] = [*json_schema.get("x-allowed", []), self.allowed]
        return json_schema


def _ipv4_cidr(value: str) -> str:
    if ":" in value:
        raise ValueError(
            f"{quoted(value)} is an IPv6 block; the cluster's security-group rules are IPv4 only, list IPv4 blocks"
        )
    try:
        return str(ipaddress.IPv4Network(value, strict=True))
    except ValueError as error:
        raise ValueError(
            f"{quoted(value)} is not a CIDR block ({error}); use a network address such as 10.0.0.0/16"
        ) from None


def _not_latest(value: str) -> str:
    if value.endswith(":latest"):
        raise ValueError(f"{quoted(value)} is not pinned; name a version tag so every node runs the same image")
    return value


def _environment(value: str) -> str:
    # AWS names start with it: load balancer names may not start with "internal-", security groups with "sg-".
    if value.startswith(("internal", "sg-")):
        raise ValueError(f"{quoted(value)} cannot start AWS resource names; avoid the prefixes 'internal' and 'sg-'")
    return value


def _instance_type(value: str) -> str:
    problem = instance_type_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def _docker_label_key(value: str) -> str:
    if value in ("docker.environment", "docker.role"):
        raise ValueError(f"{quoted(value)} is set from cluster.environment and the group's role; remove it")
    return value


def _tag_key(value: str) -> str:
    if not 1 <= len(value) <= 128:
        raise ValueError(f"tag key {quoted(value)} has {len(value)} characters; AWS allows 1 to 128")
    if value.lower().startswith("aws:"):
        raise ValueError(f"tag key {quoted(value)} uses the reserved 'aws:' prefix; choose another prefix")
    # Nodes read their tags from instance metadata, which restricts the characters of tag keys.
    if not re.fullmatch(r"[A-Za-z0-9+=.,_:@-]+", value) or value in (".", "..", "_index"):
        raise ValueError(
            f"tag key {quoted(value)} cannot be exposed in instance metadata; use letters, digits and + - = . , _ : @"
        )
    return value


def _tag_value(value: str) -> str:
    if len(value) > 256:
        raise ValueError(f"the value has {len(value)} characters; AWS tag values allow at most 256")
    return value


def _secret_text(value: str) -> str:
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


def _aws_id(prefix: str, what: str) -> Check:
    return Check(f"{what} such as {prefix}-0123456789abcdef0", rf"{prefix}-([0-9a-f]{{8}}|[0-9a-f]{{17}})")


Cidr = Annotated[
    str,
    Check(
        "an IPv4 network address with a prefix length, such as 10.0.0.0/16",
        r"([0-9]{1,3}\.){3}[0-9]{1,3}/[0-9]{1,2}",
        _ipv4_cidr,
    ),
]
Name = Annotated[str, Check("2-22 lower-case letters, digits or inner '-'", r"[a-z][a-z0-9-]{0,20}[a-z0-9]")]
AmiId = Annotated[str, _aws_id("ami", "an AMI id")]
VpcId = Annotated[str, _aws_id("vpc", "a VPC id")]
SubnetId = Annotated[str, _aws_id("subnet", "a subnet id")]
SecurityGroupId = Annotated[str, _aws_id("sg", "a security group id")]
ZoneId = Annotated[str, Check("a Route53 hosted zone id such as Z0123456789ABCDEFGHIJ", r"Z[A-Z0-9]{1,31}")]
InstanceType = Annotated[
    str,
    Check("an EC2 instance type such as t3.medium or m6i.large", r"[a-z][a-z0-9-]*\.[a-z0-9]+"),
    Check("a size that exists of a family RancherOS 1.5.8 boots", None, _instance_type),
]
AvailabilityZone = Annotated[str, Check("an availability zone name such as eu-west-1a", r"[a-z]{2}(-[a-z]+)+-\d[a-z]")]
Region = Annotated[str, Check("an AWS region such as eu-west-1", r"[a-z]{2}(-[a-z]+)+-\d")]
DnsName = Annotated[
    str,
    Check(
        "a lower-case DNS domain of at most 200 characters such as staging.example.internal",
        r"(?=.{1,200}$)([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+[a-z][a-z0-9-]*[a-z0-9]",
    ),
]
ImageRef = Annotated[
    str,
    Check("an image reference with a tag such as registry:2.8.3", r"[a-z0-9][a-z0-9._/-]*:[A-Za-z0-9][A-Za-z0-9._-]*"),
    Check("not the tag 'latest', which is not pinned", r"(?!.*:latest$).*", _not_latest),
]
# The rendered config.yml (S3 keys, objectacl, health checks) is written for distribution 2.8.
RegistryImage = Annotated[
    ImageRef, Check("a registry 2.8.x image such as registry:2.8.3", r"([a-z0-9._-]+/)*registry:2\.8\.[0-9]+")
]
EnvVarName = Annotated[
    str, Check("an environment variable name of upper-case letters, digits and '_'", r"[A-Z][A-Z0-9_]*")
]
KmsKeyArn = Annotated[
    str,
    Check(
        "a KMS key ARN such as arn:aws:kms:eu-west-1:123456789012:key/<key id> (IAM cannot grant use of an alias)",
        r"arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+",
    ),
]
SshPublicKey = Annotated[
    str,
    Check(
        "an OpenSSH public key line (ssh-ed25519, ssh-rsa or ecdsa-sha2-*)",
        r"(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+={0,2}( [^\n]*)?",
    ),
]
BucketName = Annotated[
    str,
    Check("an S3 bucket name of 3-63 lower-case letters, digits, '.' or '-'", r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"),
]
DeviceName = Annotated[str, Check("a root device name such as /dev/sda1 or /dev/xvda", r"/dev/(sd[a-z]1?|xvd[a-z])")]
LabelKey = Annotated[
    str,
    Check("a lower-case docker.* label key such as docker.tier", r"docker\.[a-z0-9][a-z0-9.-]*[a-z0-9]"),
    Check("not docker.environment or docker.role (set by the program)", None, _docker_label_key),
]
LabelValue = Annotated[
    str,
    Check("1-63 letters, digits, '.', '_' or '-', starting with a letter or digit", r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}"),
]
RuleDescription = Annotated[
    str,
    Check(
        "1-255 of letters, digits, spaces and . _ - : / ( ) # , @ [ ] + = & ; { } ! $ *",
        r"[A-Za-z0-9. _:/()#,@\[\]+=&;{}!$*-]{1,255}",
    ),
]
EnvironmentName = Annotated[
    Name, Check("not starting with 'internal' or 'sg-' (AWS name prefixes)", None, _environment)
]
TagKey = Annotated[
    str,
    Check(
        "1-128 letters, digits and + - = . , _ : @, not starting with aws:",
        r"(?![aA][wW][sS]:)[A-Za-z0-9+=.,_:@-]{1,128}",
        _tag_key,
    ),
]
TagValue = Annotated[str, Check("at most 256 characters", r"[\s\S]{0,256}", _tag_value)]
SecretText = Annotated[
    str, Check("16-256 printable characters on one line, without surrounding whitespace", None, _secret_text)
]
Port = Annotated[int, Field(ge=1, le=65535)]
Percent = Annotated[int, Field(ge=1, le=100)]
VolumeSize = Annotated[int, Field(ge=8, le=16384)]
GroupSize = Annotated[int, Field(ge=0, le=100)]
# Upper bound: a refresh waits this long per batch, and the termination hook's global timeout (100 heartbeat
# timeouts) must leave room for it.
DrainWindow = Annotated[int, Field(ge=30, le=3600)]
