"""node_agents.sigv4/aws/s3 against botocore's signer and model, through tests.fakes.aws.FakeAws."""

from __future__ import annotations

from datetime import UTC, datetime
from unittest import mock

import botocore.auth
import pytest
from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from node_agents.aws import Aws, AwsError, flatten
from node_agents.imds import Credentials
from node_agents.runtime import Clock
from node_agents.s3 import S3Client
from node_agents.sigv4 import sign
from tests.fakes.aws import ACCESS_KEY, SECRET_KEY, FakeAws
from tests.fakes.imds import FakeImds

WHEN = datetime(2026, 11, 25, 13, 30, 5, tzinfo=UTC)
CREDENTIALS = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session/token+x==")


def _botocore_authorization(method: str, url: str, headers: dict[str, str], body: bytes, service: str) -> str:
    request = AWSRequest(method=method, url=url, headers=headers, data=body)
    signer_class = S3SigV4Auth if service == "s3" else SigV4Auth
    signer = signer_class(
        BotoCredentials(CREDENTIALS.access_key, CREDENTIALS.secret_key, CREDENTIALS.token), service, "eu-west-1"
    )
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=WHEN.replace(tzinfo=None)):
        signer.add_auth(request)
    return str(request.headers["Authorization"])


@pytest.mark.parametrize(
    ("service", "method", "url", "headers", "body"),
    [
        (
            "autoscaling",
            "POST",
            "https://autoscaling.eu-west-1.amazonaws.com/",
            {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
            b"Action=CompleteLifecycleAction&Version=2011-01-01&InstanceId=i-0abc",
        ),
        (
            "monitoring",
            "POST",
            "http://127.0.0.1:8123/",
            {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
            b"Action=PutMetricData&Namespace=a%2Fb",
        ),
        (
            "s3",
            "PUT",
            "https://backups.s3.eu-west-1.amazonaws.com/consul/2026/snap%20shot%2B1.snap",
            {"x-amz-server-side-encryption": "aws:kms", "Content-Type": "application/octet-stream"},
            b"\x00\x01snapshot",
        ),
        (
            "s3",
            "GET",
            "http://127.0.0.1:9000/backups?continuation-token=a%2Fb%3D&list-type=2&prefix=consul%2F",
            {},
            b"",
        ),
    ],
)
def test_signature_matches_botocore(service: str, method: str, url: str, headers: dict[str, str], body: bytes) -> None:
    ours = sign(
        method=method,
        url=url,
        headers=headers,
        body=body,
        credentials=CREDENTIALS,
        region="eu-west-1",
        service=service,
        when=WHEN,
    )
    assert ours["Authorization"] == _botocore_authorization(method, url, headers, body, service)


def test_flatten_follows_the_query_protocol() -> None:
    params = {
        "Namespace": "swarm",
        "MetricData": [{"MetricName": "m", "Value": 1.5, "Dimensions": [{"Name": "g", "Value": "web"}]}],
        "Flag": True,
        "Empty": [],
    }
    assert flatten(params) == [
        ("Namespace", "swarm"),
        ("MetricData.member.1.MetricName", "m"),
        ("MetricData.member.1.Value", "1.5"),
        ("MetricData.member.1.Dimensions.member.1.Name", "g"),
        ("MetricData.member.1.Dimensions.member.1.Value", "web"),
        ("Flag", "true"),
        ("Empty", ""),
    ]


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> FakeAws:
    with FakeAws(buckets=["backups"]) as fake:
        for name, value in fake.env().items():
            monkeypatch.setenv(name, value)
        yield fake


def _client() -> Aws:
    return Aws(agent="test", clock=Clock(scale=0.001))


def test_query_call_reaches_the_fake_valid_and_parsed(aws: FakeAws) -> None:
    aws.respond(
        "DescribeAutoScalingInstances", {"AutoScalingInstances": [{"InstanceId": "i-1", "AutoScalingGroupName": "web"}]}
    )
    result = _client().call("autoscaling", "DescribeAutoScalingInstances", {"InstanceIds": ["i-1"]})
    assert result == {"AutoScalingInstances": [{"InstanceId": "i-1", "AutoScalingGroupName": "web"}]}
    _client().call(
        "cloudwatch",
        "PutMetricData",
        {
            "Namespace": "swarm/staging",
            "MetricData": [
                {
                    "MetricName": "Reserved",
                    "Value": 42.0,
                    "Unit": "Percent",
                    "Dimensions": [{"Name": "Group", "Value": "web"}],
                }
            ],
        },
    )
    assert aws.violations == []
    assert aws.calls_of("DescribeAutoScalingInstances") == [{"InstanceIds": ["i-1"]}]
    metric = aws.calls_of("PutMetricData")[0]["MetricData"][0]
    assert metric["Value"] == 42.0 and metric["Dimensions"] == [{"Name": "Group", "Value": "web"}]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        (
            {
                "LifecycleHookName": "drain",
                "AutoScalingGroupName": "web",
                "LifecycleActionResult": "CONTINUE",
                "Bogus": "x",
            },
            "ValidationError",
        ),
        ({"LifecycleHookName": "drain", "LifecycleActionResult": "CONTINUE"}, "ValidationError"),
        (
            {
                "LifecycleHookName": "drain",
                "AutoScalingGroupName": "web",
                "LifecycleActionResult": "CONTINUE",
                "InstanceId": ["i-1"],
            },
            "ValidationError",
        ),
    ],
    ids=["unknown", "missing", "mistyped"],
)
def test_wrong_parameters_are_violations(aws: FakeAws, params: dict[str, object], code: str) -> None:
    with pytest.raises(AwsError) as raised:
        _client().call("autoscaling", "CompleteLifecycleAction", params)
    assert raised.value.code == code and raised.value.status == 400
    assert len(aws.violations) == 1


def test_throttling_is_retried_and_other_errors_are_not(aws: FakeAws) -> None:
    aws.throttle(times=2)
    params = {"LifecycleHookName": "drain", "AutoScalingGroupName": "web", "InstanceId": "i-1"}
    _client().call("autoscaling", "RecordLifecycleActionHeartbeat", params)
    assert len(aws.calls_of("RecordLifecycleActionHeartbeat")) == 3
    aws.fail("ValidationError", action="RecordLifecycleActionHeartbeat", message="No active Lifecycle Action")
    with pytest.raises(AwsError, match="No active Lifecycle Action"):
        _client().call("autoscaling", "RecordLifecycleActionHeartbeat", params)
    assert len(aws.calls_of("RecordLifecycleActionHeartbeat")) == 4
    assert aws.violations == []


def test_server_errors_are_retried_until_the_attempts_run_out(aws: FakeAws) -> None:
    aws.fail("InternalFailure", status=500, times=None)
    with pytest.raises(AwsError) as raised:
        _client().call("autoscaling", "DescribeAutoScalingGroups", {})
    assert raised.value.status == 500
    assert len(aws.calls_of("DescribeAutoScalingGroups")) == 6


def test_wrong_secret_is_refused_by_botocore_signature_check(aws: FakeAws, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    with pytest.raises(AwsError) as raised:
        _client().call("autoscaling", "DescribeAutoScalingGroups", {})
    assert raised.value.code == "SignatureDoesNotMatch"


def test_s3_put_get_list_with_kms_and_pagination(aws: FakeAws) -> None:
    aws.s3_page_size = 2
    s3 = S3Client(_client())
    for n in range(5):
        s3.put_object(
            "backups", f"consul/snap {n}.snap", f"body{n}".encode(), kms_key_id="arn:aws:kms:eu-west-1:1:key/k"
        )
    s3.put_object("backups", "other/x", b"x")
    listed = s3.list_objects_v2("backups", "consul/")
    assert [o.key for o in listed] == [f"consul/snap {n}.snap" for n in range(5)]
    assert s3.get_object("backups", "consul/snap 3.snap") == b"body3"
    assert s3.get_object("backups", "consul/missing") is None
    stored = aws.latest("backups", "consul/snap 0.snap")
    assert stored is not None and stored.headers["x-amz-server-side-encryption"] == "aws:kms"
    assert aws.violations == []
    assert len(aws.calls_of("ListObjectsV2")) == 3


def test_credentials_and_region_come_from_imds(aws: FakeAws, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"):
        monkeypatch.delenv(name)
    with FakeImds(region=aws.region) as imds:
        monkeypatch.setenv("IMDS_ENDPOINT", imds.url)
        client = _client()
        client.call("autoscaling", "DescribeAutoScalingGroups", {})
        client.call("autoscaling", "DescribeAutoScalingGroups", {})
        assert imds.gets("iam/security-credentials/swarm-node") == 1
    assert aws.violations == []
    assert ACCESS_KEY in aws.requests[0].headers["authorization"] and SECRET_KEY not in str(aws.requests[0])


def test_expired_role_credentials_are_fetched_again(aws: FakeAws, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    with FakeImds(region=aws.region) as imds:
        monkeypatch.setenv("IMDS_ENDPOINT", imds.url)
        client = _client()
        client.call("autoscaling", "DescribeAutoScalingGroups", {})
        aws.fail("ExpiredToken", message="The security token included in the request is expired")
        client.call("autoscaling", "DescribeAutoScalingGroups", {})
        assert imds.gets("iam/security-credentials/swarm-node") == 2
    assert len(aws.calls_of("DescribeAutoScalingGroups")) == 3 and aws.violations == []
