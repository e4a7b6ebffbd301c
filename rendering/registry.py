"""Docker registry (distribution 2.x) on S3: its config.yml and the user-data that runs it.

No access keys anywhere: the S3 driver falls back to the instance role, which it fetches from the
metadata service, so the registry runs with host networking (node-bootstrap's IMDS rule only drops
forwarded container traffic). Redirects are disabled so engines never need S3 access of their own and
presigned URLs never outlive role credentials; every blob goes through the registry instead. Deletes
stay off (no garbage-collection process exists here). Uploads abandoned for a week are purged.

The replicas' shared `http.secret` never enters user-data: the one-shot step `registry-http-secret`
(rendering.host_secret) writes it from SSM Parameter Store as one line, and the registry's start, after
waiting for that file, reads it into REGISTRY_HTTP_SECRET, exported to `registry serve`: distribution reads
that variable in place of http.secret. Only then do registry hosts run agents at all.

Objects are written with `keyid` (the bucket's KMS key) when one is given: `encrypt: true` alone makes
the driver request AES256 on every PUT, overriding the bucket's default KMS encryption. The bucket
enforces BucketOwnerEnforced, which rejects the driver's default `x-amz-acl: private` with
AccessControlListNotSupported, so objects carry `bucket-owner-full-control`, the one ACL it accepts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rendering.agents import AgentArchive, bootstrap_files
from rendering.host_secret import SECRETS_VOLUME, HostSecret, secret_step
from rendering.inputs import require_image, require_name
from rendering.node_services import ConfigFile, configured_service, host_user_data
from rendering.rancheros_host import host_document
from rendering.yaml_text import dump_yaml, merge

CONFIG_DIR = "/opt/registry"
SERVICE = "docker-registry"
SECRET_STEP = "registry-http-secret"
SECRET_VARIABLE = "REGISTRY_HTTP_SECRET"  # distribution's override of http.secret
_IN_CONTAINER = "/etc/docker/registry"
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]")
_KMS_KEY_ARN = re.compile(r"arn:aws(-[a-z]+)*:kms:[a-z]{2}(-[a-z]+)+-[0-9]:[0-9]{12}:(key|alias)/[A-Za-z0-9/_-]+")


@dataclass(frozen=True)
class HttpSecret:
    parameter: str  # SSM SecureString holding http.secret
    agents: AgentArchive  # where the step that fetches it runs from


@dataclass(frozen=True)
class RegistrySpec:
    environment: str
    image: str  # "registry:2.8.3"
    port: int  # 5000
    bucket: str
    region: str
    http_secret: HttpSecret | None  # needed when replicas > 1; None: each replica makes its own
    ssh_authorized_keys: Sequence[str]
    instance_type: str  # sets rancher.resize_device
    kms_key_id: str | None = None  # the bucket's KMS key (ARN); None: SSE-S3 (AES256)


def render_registry_config(spec: RegistrySpec) -> str:
    if not 1 <= spec.port <= 65535:
        raise ValueError(f"registry port {spec.port} is not a TCP port")
    if not _BUCKET.fullmatch(spec.bucket):
        raise ValueError(f"bucket {spec.bucket!r} is not an S3 bucket name")
    if not _REGION.fullmatch(spec.region):
        raise ValueError(f"region {spec.region!r} is not an AWS region such as eu-west-1")
    http: dict[str, Any] = {"addr": f":{spec.port}", "headers": {"X-Content-Type-Options": ["nosniff"]}}
    s3: dict[str, Any] = {"region": spec.region, "bucket": spec.bucket, "encrypt": True}
    if spec.kms_key_id is not None:
        if not _KMS_KEY_ARN.fullmatch(spec.kms_key_id):
            raise ValueError(f"kms_key_id {spec.kms_key_id!r} is not a KMS key or alias ARN")
        # Without keyid the driver asks for AES256 on every PUT, overriding the bucket's KMS default.
        s3["keyid"] = spec.kms_key_id
    # BucketOwnerEnforced refuses the driver's default `x-amz-acl: private`; it accepts this one.
    s3.update({"objectacl": "bucket-owner-full-control", "secure": True, "v4auth": True})
    config = {
        "version": "0.1",
        "log": {"level": "info", "fields": {"service": "registry", "environment": spec.environment}},
        "storage": {
            "s3": s3,
            "delete": {"enabled": False},
            "redirect": {"disable": True},
            "cache": {"blobdescriptor": "inmemory"},
            "maintenance": {
                "uploadpurging": {"enabled": True, "age": "168h", "interval": "24h", "dryrun": False},
                "readonly": {"enabled": False},
            },
        },
        "http": http,
        "health": {"storagedriver": {"enabled": True, "interval": "10s", "threshold": 3}},
    }
    return dump_yaml(config)


def render_registry_host(spec: RegistrySpec) -> str:
    what = f"{spec.environment} registry"
    config = ConfigFile(CONFIG_DIR, _IN_CONTAINER, "config.yml", render_registry_config(spec), mode="0644")
    image, command = require_image(spec.image, f"{what}: image"), "registry serve {file}"
    environment = require_name(spec.environment, "environment")
    base = host_document(environment, "registry", spec.ssh_authorized_keys, spec.instance_type)
    if spec.http_secret is None:
        return host_user_data(merge(base, configured_service(SERVICE, image, config, command)), what)
    secret = HostSecret(SECRET_STEP, spec.http_secret.parameter, ("--line",))
    service = configured_service(
        SERVICE,
        image,
        config,
        command,
        volumes=[SECRETS_VOLUME],
        waits_for=[secret.path],
        prepare=f"IFS= read -r {SECRET_VARIABLE} <{secret.path} && export {SECRET_VARIABLE}",
    )
    step = merge({"write_files": bootstrap_files()}, secret_step(secret, spec.http_secret.agents))
    return host_user_data(merge(merge(base, service), step), what)
