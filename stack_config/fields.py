"""The value types of the stack configuration: each says, in words and as a pattern, what it allows.

`Check` is the one place a format lives: it validates (with a message in words, never a regular
expression), and it puts the pattern and the words into the JSON Schema, from which the README's
configuration reference and the editor schema are generated.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field, GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

from stack_config import value_rules as rules
from stack_config.quoting import quoted


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


def _aws_id(prefix: str, what: str) -> Check:
    return Check(f"{what} such as {prefix}-0123456789abcdef0", rf"{prefix}-([0-9a-f]{{8}}|[0-9a-f]{{17}})")


Cidr = Annotated[
    str,
    Check(
        "an IPv4 network address with a prefix length, such as 10.0.0.0/16",
        r"([0-9]{1,3}\.){3}[0-9]{1,3}/[0-9]{1,2}",
        rules.ipv4_cidr,
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
    Check("an EC2 instance type such as t3.medium or m6i.large", r"[a-z][a-z0-9-]{0,15}\.[a-z0-9]{1,15}"),
    Check("a size that exists of a family RancherOS 1.5.8 boots", None, rules.instance_type),
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
    Check(
        "an image reference [registry[:port]/]name:tag with a pinned tag (not 'latest'), such as registry:2.8.3",
        rules.IMAGE_REFERENCE,
        rules.image_reference,
    ),
]
# The rendered config.yml (S3 keys, objectacl, health checks) is written for distribution 2.8.
RegistryImage = Annotated[
    ImageRef, Check("a registry 2.8.x image such as registry:2.8.3", r"([a-z0-9._-]+/)*registry:2\.8\.[0-9]+")
]
EnvVarName = Annotated[
    str,
    Check("an environment variable name of upper-case letters, digits and '_'", r"[A-Z][A-Z0-9_]*"),
    Check("not a name the node or its shells use (AWS_*, PATH, HOME, LD_*, ...)", None, rules.variable_name),
]
KmsKeyArn = Annotated[
    str,
    Check(
        "a KMS key ARN arn:<partition>:kms:<the stack's region>:<account>:key/<key id>, the key id a UUID or "
        "mrk-<32 hex digits> (IAM cannot grant use of an alias)",
        r"arn:aws(-cn|-us-gov|-iso|-iso-b)?:kms:[a-z]{2}(-[a-z]+)+-\d:\d{12}:key/"
        r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})",
    ),
]
SshPublicKey = Annotated[
    str,
    Check(
        "an OpenSSH public key line (ssh-ed25519, ssh-rsa or ecdsa-sha2-*), any comment printable ASCII without '$'",
        r"(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+={0,2}( [ -#%-~]*)?",
    ),
]
BucketName = Annotated[
    str,
    Check(
        "an S3 bucket name: 3-63 lower-case letters, digits, '.' or '-', no '..', not an IP address, none of the "
        "reserved prefixes (xn--, sthree-, amzn-s3-demo-) and suffixes (-s3alias, --ol-s3, .mrap, --x-s3, --table-s3)",
        r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]",
        rules.bucket_name,
    ),
]
LabelKey = Annotated[
    str,
    Check("a lower-case docker.* label key such as docker.tier", r"docker\.[a-z0-9][a-z0-9.-]*[a-z0-9]"),
    Check("not docker.environment or docker.role (set by the program)", None, rules.docker_label_key),
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
    Name, Check("not starting with 'internal' or 'sg-' (AWS name prefixes)", None, rules.environment)
]
TagKey = Annotated[
    str,
    Check(
        f"1-{rules.TAG_KEY_LIMIT} {rules.TAG_KEY_CHARACTERS}, not starting with aws:",
        rf"(?![aA][wW][sS]:)[A-Za-z0-9+=._:@-]{{1,{rules.TAG_KEY_LIMIT}}}",
        rules.tag_key,
    ),
]
TagValue = Annotated[str, Check(f"0-256 {rules.TAG_VALUE_CHARACTERS}, not starting with aws:", None, rules.tag_value)]
GossipKey = Annotated[str, Check(f"base64 of {rules.GOSSIP_KEY_BYTES} random bytes", None, rules.gossip_key)]
SecretText = Annotated[
    str, Check("16-256 printable characters on one line, without surrounding whitespace", None, rules.secret_text)
]
Port = Annotated[int, Field(ge=1, le=65535)]
Percent = Annotated[int, Field(ge=1, le=100)]
VolumeSize = Annotated[int, Field(ge=8, le=16384)]
GroupSize = Annotated[int, Field(ge=0, le=100)]
# Upper bound: a refresh waits this long per batch, and the termination hook's global timeout (100 heartbeat
# timeouts) must leave room for it.
DrainWindow = Annotated[int, Field(ge=30, le=3600)]
