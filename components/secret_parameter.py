"""SecretParameter: one secret of the cluster as an SSM SecureString that exactly one host role may read.

Hosts fetch it at boot (rendering.host_secret), so user-data, which ReadOnlyAccess shows in clear through
DescribeLaunchTemplateVersions, only names it. The value is a Pulumi secret, encrypted in state. It is
encrypted with the stack's KMS key when one is set: then the reading role also needs kms:Decrypt, which it
gets only through SSM and only for this parameter (SSM passes the parameter's ARN as encryption context).
Without a stack key it uses the account's `aws/ssm` key, whose policy lets every principal of the account
decrypt through SSM: `ssm:GetParameter` on this one ARN is then the only gate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True)
class SecretParameterArgs:
    parameter_name: str  # rendering.host_secret.parameter_name
    description: str
    value: pulumi.Input[str]
    statement_id: str  # names the IAM statements, e.g. ConsulGossipKey
    region: str
    kms_key_arn: str | None  # None: the account's aws/ssm key
    tags: Mapping[str, str]


class SecretParameter(pulumi.ComponentResource):
    name: str
    read_statements: list[dict[str, Any]]  # what the one role that reads it needs

    def __init__(self, name: str, args: SecretParameterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("swarmcluster:secrets:SecretParameter", name, None, opts)
        parameter = aws.ssm.Parameter(
            f"{name}-parameter",
            aws.ssm.ParameterArgs(
                name=args.parameter_name,
                description=args.description,
                type="SecureString",
                tier="Standard",
                value=pulumi.Output.secret(args.value),
                key_id=args.kms_key_arn,
                tags=dict(args.tags),
            ),
            pulumi.ResourceOptions(parent=self),
        )
        self.name = args.parameter_name
        self.read_statements = _read_statements(args, parameter.arn)
        self.register_outputs({"name": parameter.name, "arn": parameter.arn})


def _read_statements(args: SecretParameterArgs, arn: pulumi.Output[str]) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = [
        {"Sid": f"Read{args.statement_id}", "Effect": "Allow", "Action": "ssm:GetParameter", "Resource": arn}
    ]
    if args.kms_key_arn:
        condition = {"kms:ViaService": f"ssm.{args.region}.amazonaws.com", "kms:EncryptionContext:PARAMETER_ARN": arn}
        statements.append(
            {
                "Sid": f"Decrypt{args.statement_id}",
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": args.kms_key_arn,
                "Condition": {"StringEquals": condition},
            }
        )
    return statements
