"""offline.diff on hand-made records: what a replacement or deletion changes in the resources that refer to it."""

from __future__ import annotations

from typing import Any

from offline.diff import diff_runs

BUCKET = "example-staging-docker-registry"


def _record(type_: str, name: str, inputs: dict[str, Any], references: list[str]) -> dict[str, Any]:
    return {
        "urn": f"urn:pulumi:staging::swarm-cluster::{type_}::{name}",
        "type": type_,
        "name": name,
        "custom": True,
        "inputs": inputs,
        "references": references,
        "protect": False,
        "ignoreChanges": [],
    }


def _bucket() -> dict[str, Any]:
    return _record("aws:s3/bucket:Bucket", "registry-bucket", {"bucket": BUCKET}, [BUCKET, f"arn:aws:s3:::{BUCKET}"])


def _object(name: str) -> dict[str, Any]:
    # The bucket's name comes back as the object's `bucket` output (and, offline, as its id).
    return _record("aws:s3/bucketObjectv2:BucketObjectv2", name, {"bucket": BUCKET, "key": "a.zip"}, [BUCKET])


def test_deleting_an_object_leaves_the_bucket_whose_name_it_echoes() -> None:
    diffs = diff_runs([_bucket(), _object("old-object")], [_bucket(), _object("new-object")])
    assert sorted((d.action, d.name) for d in diffs) == [("create", "new-object"), ("delete", "old-object")]


def test_what_refers_to_a_replaced_group_by_its_minted_id_changes_with_it() -> None:
    group = "aws:ec2/securityGroup:SecurityGroup"
    rule = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"

    def runs(description: str) -> list[dict[str, Any]]:
        guard = _record(group, "nodes", {"name": "staging-nodes", "description": description}, ["sg-0123456789abcdef0"])
        return [guard, _record(rule, "ssh", {"securityGroupId": "sg-0123456789abcdef0", "fromPort": 22}, [])]

    diffs = {d.name: d for d in diff_runs(runs("old"), runs("new"))}
    assert diffs["nodes"].action == "replace" and diffs["ssh"].action == "replace"
    assert diffs["ssh"].because_of == ["nodes"]
