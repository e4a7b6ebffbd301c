"""What AWS would compute for each resource, so the program's outputs resolve offline.

Inputs are echoed back as state (as the engine does for a create); the computed attributes the
program reads (ids, ARNs, DNS names, versions) get stable fake values derived from the name.
"""

from __future__ import annotations

import hashlib
from typing import Any

ACCOUNT_ID = "123456789012"
ROOT_DEVICE_NAME = "/dev/sda1"  # what RancherOS's HVM AMIs are looked up as offline


def fake_ami(args: dict[str, Any]) -> dict[str, Any]:
    """The AMI a `getAmi` lookup by image id finds: a RancherOS 1.5 HVM image with an EBS root."""
    [image_id] = next(f["values"] for f in args["filters"] if f["name"] == "image-id")
    return {
        "id": image_id,
        "imageId": image_id,
        "name": "rancheros-v1.5.8-hvm-1",
        "architecture": "x86_64",
        "virtualizationType": "hvm",
        "rootDeviceType": "ebs",
        "rootDeviceName": ROOT_DEVICE_NAME,
        "enaSupport": True,
    }


def fake_caller_identity() -> dict[str, Any]:
    """Who `pulumi up` runs as: a deploy role of the fake account."""
    return {
        "id": ACCOUNT_ID,
        "accountId": ACCOUNT_ID,
        "arn": f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/deploy/pulumi",
        "userId": "AROAEXAMPLEDEPLOYROLE:pulumi",
    }


def fake_state(type_: str, name: str, inputs: dict[str, Any], region: str) -> tuple[str, dict[str, Any]]:
    physical = inputs.get("name") or inputs.get("bucket") or name
    resource_id = _id(type_, physical)
    computed = _computed(type_, str(physical), resource_id, region, inputs)
    return resource_id, {**inputs, **computed}


def _id(type_: str, physical: str) -> str:
    digest = hashlib.sha256(f"{type_}/{physical}".encode()).hexdigest()[:17]
    prefixes = {
        "aws:ec2/securityGroup:SecurityGroup": "sg-",
        "aws:ec2/launchTemplate:LaunchTemplate": "lt-",
        "aws:route53/zone:Zone": "Z",
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": "sgr-",
        "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": "sgr-",
    }
    prefix = prefixes.get(type_)
    if prefix == "Z":
        return "Z" + digest.upper()[:20]
    return f"{prefix}{digest}" if prefix else physical


def _computed(type_: str, physical: str, resource_id: str, region: str, inputs: dict[str, Any]) -> dict[str, Any]:
    arn = f"arn:aws:{type_.split(':')[1].split('/')[0]}:{region}:{ACCOUNT_ID}:{physical}"
    match type_:
        case "aws:iam/role:Role" | "aws:iam/instanceProfile:InstanceProfile":
            kind = "role" if type_.endswith("Role") else "instance-profile"
            return {"arn": f"arn:aws:iam::{ACCOUNT_ID}:{kind}/{physical}"}
        case "aws:ssm/parameter:Parameter":  # names start with `/`
            return {"arn": f"arn:aws:ssm:{region}:{ACCOUNT_ID}:parameter{physical}"}
        case "aws:s3/bucket:Bucket":
            return {"arn": f"arn:aws:s3:::{physical}", "bucket": physical}
        case "aws:ec2/launchTemplate:LaunchTemplate":
            return {"arn": arn, "latestVersion": 1, "defaultVersion": 1}
        case "aws:route53/zone:Zone":
            return {"zoneId": resource_id, "arn": f"arn:aws:route53:::hostedzone/{resource_id}"}
        case "aws:lb/loadBalancer:LoadBalancer":
            return {
                "arn": arn,
                "dnsName": f"{physical}-{resource_id[-8:]}.elb.{region}.amazonaws.com",
                "zoneId": "Z2IFOLAFXWLO4F",
            }
        case "aws:route53/record:Record":
            return {"fqdn": inputs.get("name", physical)}
        case _:
            return {"arn": arn}
