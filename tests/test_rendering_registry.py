"""Registry config and user-data."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from rendering.agents import AgentArchive
from rendering.registry import HttpSecret, RegistrySpec, render_registry_config, render_registry_host
from rendering.yaml_text import UserDataTooLarge
from tests.cloud_config_checks import (
    duplicate_list_items,
    incompressible,
    schema_errors,
    shell_snippets,
    shellcheck_errors,
)

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx0ZXN0a2V5Zm9ydGhlcmVuZGVyZXJ0ZXN0cw== ops@example"
CREDENTIAL_KEYS = {"accesskey", "secretkey", "sessiontoken", "aws_access_key_id", "aws_secret_access_key"}
AGENTS = AgentArchive(
    f"https://example-staging-docker-registry.s3.eu-west-1.amazonaws.com/node-agents/{'c' * 64}.zip", "eu-west-1"
)
SECRET = HttpSecret("/swarm-cluster/staging/registry-http-secret", AGENTS)


def spec(**changes: Any) -> RegistrySpec:
    base = RegistrySpec(
        environment="staging",
        image="registry:2.8.3",
        port=5000,
        bucket="example-staging-docker-registry",
        region="eu-west-1",
        http_secret=None,
        ssh_authorized_keys=[KEY],
        instance_type="t3.small",
    )
    return dataclasses.replace(base, **changes)


def keys(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield str(key).lower()
            yield from keys(value)
    elif isinstance(node, list):
        for value in node:
            yield from keys(value)


@pytest.mark.parametrize("secret", [None, SECRET])
def test_config_parses_back(secret: HttpSecret | None) -> None:
    config = yaml.safe_load(render_registry_config(spec(http_secret=secret)))
    assert config["version"] == "0.1"
    s3 = config["storage"]["s3"]
    assert (s3["region"], s3["bucket"]) == ("eu-west-1", "example-staging-docker-registry")
    assert s3["encrypt"] is True and s3["secure"] is True
    assert config["storage"]["delete"] == {"enabled": False}
    assert config["storage"]["maintenance"]["uploadpurging"]["enabled"] is True
    assert config["http"]["addr"] == ":5000"
    assert config["health"]["storagedriver"]["enabled"] is True
    assert "secret" not in config["http"], "REGISTRY_HTTP_SECRET, from SSM (tests/test_host_secrets.py)"
    assert not CREDENTIAL_KEYS & set(keys(config))


KMS_KEY = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


@pytest.mark.parametrize("kms_key_id", [None, KMS_KEY])
def test_objects_use_the_buckets_kms_key(kms_key_id: str | None) -> None:
    s3 = yaml.safe_load(render_registry_config(spec(kms_key_id=kms_key_id)))["storage"]["s3"]
    assert s3["encrypt"] is True
    if kms_key_id is None:
        assert "keyid" not in s3
    else:
        assert s3["keyid"] == KMS_KEY


def test_kms_key_id_is_the_last_optional_field() -> None:
    fields = dataclasses.fields(RegistrySpec)
    assert fields[-1].name == "kms_key_id"
    assert fields[-1].default is None


def test_objects_are_owned_by_the_bucket_owner() -> None:
    # BucketOwnerEnforced rejects the driver's default `x-amz-acl: private`.
    s3 = yaml.safe_load(render_registry_config(spec()))["storage"]["s3"]
    assert s3["objectacl"] == "bucket-owner-full-control"


@pytest.mark.parametrize(
    "changes",
    [
        {"port": 0},
        {"bucket": "Bad_Bucket"},
        {"region": "eu"},
        {"kms_key_id": ""},
        {"kms_key_id": "arn:aws:s3:::example-bucket"},
        {"kms_key_id": KMS_KEY + "\nfoo: bar"},
    ],
)
def test_bad_config_input_is_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        render_registry_config(spec(**changes))


@pytest.mark.parametrize("secret", [None, SECRET])
def test_user_data_passes_every_check(secret: HttpSecret | None) -> None:
    text = render_registry_host(spec(http_secret=secret))
    assert text.split("\n", 1)[0] == "#cloud-config"
    assert schema_errors(text) == []
    assert duplicate_list_items(text) == []
    assert shellcheck_errors(text) == []
    assert "rancher.services.docker-registry.entrypoint" in [name for name, _ in shell_snippets(text)]


def test_user_data_writes_the_config_and_runs_the_registry() -> None:
    document = yaml.safe_load(render_registry_host(spec(kms_key_id=KMS_KEY)))
    written = next(f for f in document["write_files"] if f["path"] == "/opt/registry/config.yml")
    assert written["permissions"] == "0644"
    assert yaml.safe_load(written["content"])["storage"]["s3"]["keyid"] == KMS_KEY
    service = document["rancher"]["services"]["docker-registry"]
    assert service["image"] == "registry:2.8.3"
    assert service["restart"] == "always"
    assert service["net"] == "host"  # role credentials come from the metadata service
    assert service["volumes"] == ["/opt/registry:/etc/docker/registry:ro"]
    assert "prefix=staging-registry\n" in document["write_files"][0]["content"]


def test_oversized_user_data_names_the_host() -> None:
    keys_ = [f"ssh-ed25519 {incompressible(400, i, base64_only=True)} k{i}" for i in range(50)]
    with pytest.raises(UserDataTooLarge, match="staging registry"):
        render_registry_host(spec(ssh_authorized_keys=keys_))
