"""NodeAgentsArchive: the node agents' code as one S3 object that hosts fetch when an agent first starts.

EC2 user-data (16 KB) cannot hold the agents next to a host's boot configuration, so user-data carries
node_agents/bootstrap.py, this object's URL and its SHA-256; bootstrap refuses any other content. The key
is the digest: a code change is a new object and a new user-data (every host that runs agents rolls to it),
while running hosts keep the archive they fetched. The object lives in the cluster bucket, which is already
private, TLS-only and encrypted with the stack's key; hosts may read this one key there and nothing else
through these statements.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from rendering.agents import AgentArchive, agents_archive

PREFIX = "node-agents"


@dataclass(frozen=True)
class NodeAgentsArchiveArgs:
    bucket: pulumi.Input[str]
    bucket_arn: pulumi.Input[str]
    region: str
    kms_key_arn: str | None
    tags: Mapping[str, str]


class NodeAgentsArchive(pulumi.ComponentResource):
    archive: pulumi.Output[AgentArchive]
    read_statements: list[dict[str, Any]]  # what a host's role needs to fetch it

    def __init__(self, name: str, args: NodeAgentsArchiveArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("swarmcluster:agents:NodeAgentsArchive", name, None, opts)
        content = agents_archive()
        digest = hashlib.sha256(content).hexdigest()
        key = f"{PREFIX}/{digest}.zip"
        stored = aws.s3.BucketObjectv2(
            f"{name}-object",
            aws.s3.BucketObjectv2Args(
                bucket=args.bucket,
                key=key,
                content_base64=base64.b64encode(content).decode("ascii"),
                content_type="application/zip",
                tags=dict(args.tags),
            ),
            pulumi.ResourceOptions(parent=self),
        )
        self.archive = stored.bucket.apply(lambda bucket: AgentArchive(_url(bucket, args.region, key), args.region))
        self.read_statements = _read_statements(args, key)
        self.register_outputs({"key": stored.key, "sha256": digest})


def _url(bucket: str, region: str, key: str) -> str:
    # Virtual-hosted style, except for dotted names, which the *.s3 wildcard certificate does not cover.
    if "." in bucket:
        return f"https://s3.{region}.amazonaws.com/{bucket}/{key}"
    return f"https://{bucket}.s3.{region}.amazonaws.com/{key}"


def _read_statements(args: NodeAgentsArchiveArgs, key: str) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = [
        {
            "Sid": "FetchNodeAgents",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": pulumi.Output.concat(args.bucket_arn, "/", key),
        }
    ]
    if args.kms_key_arn:
        statements.append(
            {
                "Sid": "DecryptNodeAgents",
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": args.kms_key_arn,
                "Condition": {"StringEquals": {"kms:ViaService": f"s3.{args.region}.amazonaws.com"}},
            }
        )
    return statements
