"""RegistryBucket: the cluster's S3 bucket, private, encrypted and versioned. Two tenants, each confined
to its own prefix by its role: the private Docker registry (`docker/`, distribution's fixed root when no
rootdirectory is set) and the Consul servers' snapshots (`consul-snapshots/`, expired after the
configured retention).

Consul snapshots share this bucket rather than get one of their own: they need exactly its
protections (TLS only, no public access, versioning, the stack's KMS key, kept through `pulumi destroy`
in production), and a second globally unique bucket name would be one more thing to configure. What
separates them is IAM: the registry cannot read or overwrite snapshots (which hold the whole KV store),
and the Consul servers can only put and get snapshots; neither may delete (lifecycle rules do).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

REGISTRY_PREFIX = "docker/"
SNAPSHOT_PREFIX = "consul-snapshots/"


@dataclass(frozen=True)
class RegistryBucketArgs:
    name: str
    kms_key_arn: str | None
    protect: bool  # production: `pulumi destroy` must not be able to lose images
    snapshot_retention_days: int
    tags: Mapping[str, str]


class RegistryBucket(pulumi.ComponentResource):
    bucket_name: pulumi.Output[str]
    arn: pulumi.Output[str]
    access_statements: list[dict[str, Any]]  # the least the registry needs, scoped to its prefix
    snapshot_access_statements: list[dict[str, Any]]  # the least the Consul servers need, likewise

    def __init__(self, name: str, args: RegistryBucketArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("swarmcluster:services:RegistryBucket", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        bucket = aws.s3.Bucket(
            name,
            aws.s3.BucketArgs(bucket=args.name, force_destroy=False, tags=dict(args.tags)),
            pulumi.ResourceOptions(parent=self, protect=args.protect, retain_on_delete=args.protect),
        )
        # S3 rejects concurrent configuration changes of one bucket (OperationAborted): one after the other.
        ownership = aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            aws.s3.BucketOwnershipControlsArgs(
                bucket=bucket.id,
                rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            ),
            child,
        )
        public_access = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access",
            aws.s3.BucketPublicAccessBlockArgs(
                bucket=bucket.id,
                block_public_acls=True,
                block_public_policy=True,
                ignore_public_acls=True,
                restrict_public_buckets=True,
            ),
            self._after(ownership),
        )
        encryption = aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            aws.s3.BucketServerSideEncryptionConfigurationInitArgs(bucket=bucket.id, rules=[_encryption_rule(args)]),
            self._after(public_access),
        )
        versioning = aws.s3.BucketVersioning(
            f"{name}-versioning",
            aws.s3.BucketVersioningInitArgs(
                bucket=bucket.id,
                versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
            ),
            self._after(encryption),
        )
        lifecycle = aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            aws.s3.BucketLifecycleConfigurationArgs(
                bucket=bucket.id,
                rules=[
                    # The registry uploads layers in multipart chunks; abandoned pushes must not pile up.
                    aws.s3.BucketLifecycleConfigurationRuleArgs(
                        id="abort-incomplete-uploads",
                        status="Enabled",
                        filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                        abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                            days_after_initiation=7
                        ),
                    ),
                    *_snapshot_expiry(args.snapshot_retention_days),
                ],
            ),
            self._after(versioning),
        )
        aws.s3.BucketPolicy(
            f"{name}-tls-only",
            aws.s3.BucketPolicyArgs(bucket=bucket.id, policy=pulumi.Output.json_dumps(_tls_only(bucket.arn))),
            self._after(lifecycle),
        )
        self.bucket_name = bucket.bucket
        self.arn = bucket.arn
        self.access_statements = _access_statements(bucket.arn, args.kms_key_arn)
        self.snapshot_access_statements = _snapshot_statements(bucket.arn, args.kms_key_arn)
        self.register_outputs({"bucketName": bucket.bucket})

    def _after(self, previous: pulumi.Resource) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, depends_on=[previous])


def _encryption_rule(args: RegistryBucketArgs) -> aws.s3.BucketServerSideEncryptionConfigurationRuleArgs:
    default = aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
        sse_algorithm="aws:kms" if args.kms_key_arn else "AES256",
        kms_master_key_id=args.kms_key_arn,
    )
    return aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
        apply_server_side_encryption_by_default=default, bucket_key_enabled=bool(args.kms_key_arn)
    )


def _snapshot_expiry(days: int) -> list[aws.s3.BucketLifecycleConfigurationRuleArgs]:
    """Snapshots older than `days` go, and so do versions overwritten that long ago; the delete markers
    expiry leaves behind are removed once nothing is under them."""
    only_snapshots = aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=SNAPSHOT_PREFIX)
    return [
        aws.s3.BucketLifecycleConfigurationRuleArgs(
            id="expire-consul-snapshots",
            status="Enabled",
            filter=only_snapshots,
            expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=days),
            noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                noncurrent_days=days
            ),
        ),
        aws.s3.BucketLifecycleConfigurationRuleArgs(
            id="remove-consul-snapshot-delete-markers",
            status="Enabled",
            filter=only_snapshots,
            expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(expired_object_delete_marker=True),
        ),
    ]


def _tls_only(arn: pulumi.Output[str]) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [arn, pulumi.Output.concat(arn, "/*")],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }


def _access_statements(arn: pulumi.Output[str], kms_key_arn: str | None) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = [
        {
            "Sid": "RegistryListBucket",
            "Effect": "Allow",
            "Action": ["s3:ListBucket", "s3:GetBucketLocation", "s3:ListBucketMultipartUploads"],
            "Resource": arn,
        },
        {
            "Sid": "RegistryObjects",
            "Effect": "Allow",
            "Action": [
                "s3:GetObject",
                "s3:PutObject",
                "s3:DeleteObject",
                "s3:ListMultipartUploadParts",
                "s3:AbortMultipartUpload",
            ],
            "Resource": pulumi.Output.concat(arn, "/", REGISTRY_PREFIX, "*"),
        },
    ]
    return statements + _key_statement("RegistryBucketKey", kms_key_arn)


def _snapshot_statements(arn: pulumi.Output[str], kms_key_arn: str | None) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = [
        {
            "Sid": "ConsulSnapshotList",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": arn,
            "Condition": {"StringLike": {"s3:prefix": [f"{SNAPSHOT_PREFIX}*"]}},
        },
        {
            "Sid": "ConsulSnapshotObjects",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject"],
            "Resource": pulumi.Output.concat(arn, "/", SNAPSHOT_PREFIX, "*"),
        },
    ]
    return statements + _key_statement("ConsulSnapshotKey", kms_key_arn)


def _key_statement(sid: str, kms_key_arn: str | None) -> list[dict[str, Any]]:
    if not kms_key_arn:
        return []
    return [{"Sid": sid, "Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": kms_key_arn}]
