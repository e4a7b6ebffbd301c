"""One line of key inputs per resource, like the details a reviewer looks for in a preview."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from offline.harness import RecordedResource
from rendering.yaml_text import USER_DATA_LIMIT, decode_user_data


def summarize(resource: RecordedResource) -> str:
    describe = _BY_TYPE.get(resource.type)
    text = describe(resource.inputs) if describe else _name_only(resource.inputs)
    return f"{text} [protected]" if resource.protect else text


def _name_only(inputs: dict[str, Any]) -> str:
    return f"name={inputs['name']}" if "name" in inputs else ""


def whole_numbers(value: Any) -> Any:
    """The mocks carry every number as a float; a version shown as 1.0 would read as a different value."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: whole_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [whole_numbers(v) for v in value]
    return value


def _int(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) else str(value)


def _launch_template(i: dict[str, Any]) -> str:
    metadata = i.get("metadataOptions", {})
    ebs = i.get("blockDeviceMappings", [{}])[0].get("ebs", {})
    return (
        f"ami={i.get('imageId')} type={i.get('instanceType')} imds-tokens={metadata.get('httpTokens')} "
        f"hop-limit={_int(metadata.get('httpPutResponseHopLimit'))} root={_int(ebs.get('volumeSize'))}GB "
        f"{ebs.get('volumeType')} encrypted={ebs.get('encrypted')} {_user_data(i.get('userData'))}"
    )


def _user_data(encoded: str | None) -> str:
    """What counts against EC2's limit (the stored, gzip'd bytes) beside the text a host reads."""
    if not encoded:
        return "user-data=none"
    stored, text = len(base64.b64decode(encoded)), len(decode_user_data(encoded).encode())
    return f"user-data={stored}B of {USER_DATA_LIMIT}B stored ({text}B of text)"


def _group(i: dict[str, Any]) -> str:
    refresh = i.get("instanceRefresh", {}).get("preferences", {})
    return (
        f"size={_int(i.get('minSize'))}/{_int(i.get('desiredCapacity'))}/{_int(i.get('maxSize'))} "
        f"subnets={len(i.get('vpcZoneIdentifiers', []))} template-version={i.get('launchTemplate', {}).get('version')} "
        f"refresh={_int(refresh.get('minHealthyPercentage'))}-{_int(refresh.get('maxHealthyPercentage'))}% "
        f"scale-in-protected={i.get('protectFromScaleIn')} tags={len(i.get('tags', []))}"
    )


def _policy(i: dict[str, Any]) -> str:
    target = i.get("targetTrackingConfiguration", {})
    custom = target.get("customizedMetricSpecification", {})
    metric = target.get("predefinedMetricSpecification", {}).get("predefinedMetricType") or (
        f"{custom.get('namespace')}/{custom.get('metricName')}"
    )
    return f"{metric} target={_int(target.get('targetValue'))}% scale-in-disabled={target.get('disableScaleIn', False)}"


def _rule(i: dict[str, Any]) -> str:
    source = i.get("cidrIpv4") or i.get("cidrIpv6") or i.get("referencedSecurityGroupId")
    ports = "all" if i.get("ipProtocol") == "-1" else f"{i.get('ipProtocol')}/{_int(i.get('fromPort'))}"
    return f"{ports} {source} ({i.get('description', '')})"


_BY_TYPE: dict[str, Callable[[dict[str, Any]], str]] = {
    "aws:ec2/launchTemplate:LaunchTemplate": _launch_template,
    "aws:autoscaling/group:Group": _group,
    "aws:autoscaling/policy:Policy": _policy,
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": lambda i: "in  " + _rule(i),
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": lambda i: "out " + _rule(i),
    "aws:lb/loadBalancer:LoadBalancer": lambda i: (
        f"name={i.get('name')} internal={i.get('internal')} {i.get('loadBalancerType')}"
    ),
    "aws:lb/targetGroup:TargetGroup": lambda i: (
        f"{i.get('protocol')}/{_int(i.get('port'))} health={i.get('healthCheck', {}).get('protocol')}"
    ),
    "aws:lb/listener:Listener": lambda i: f"{i.get('protocol')}/{_int(i.get('port'))}",
    "aws:route53/record:Record": lambda i: f"{i.get('name')} {i.get('type')} alias",
    "aws:route53/zone:Zone": lambda i: f"{i.get('name')} private",
    "aws:s3/bucket:Bucket": lambda i: f"bucket={i.get('bucket')}",
    "aws:iam/rolePolicy:RolePolicy": lambda i: f"name={i.get('name')}",
}
