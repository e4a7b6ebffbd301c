"""A small AWS client for the agents: SigV4-signed calls with retries, and the query protocol.

- Credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN when set, else the instance
  role's from IMDS. Region: AWS_REGION / AWS_DEFAULT_REGION, else IMDS.
- Endpoints: `AWS_ENDPOINT_URL_<SERVICE ID>` (e.g. AWS_ENDPOINT_URL_AUTO_SCALING), else
  `AWS_ENDPOINT_URL`, else the service's regional endpoint: the same variables the AWS SDKs and CLI
  read, which is how tests point every agent at tests/fakes.
- Query protocol services are entries of QUERY_SERVICES; `call()` flattens nested parameters the way
  botocore's query serializer does (structures `A.B`, lists `A.member.N`) and turns the `<Action>Result`
  element into dicts, lists and strings. JSON protocol services (SSM) go through `json_call()`.
- Throttling, 5xx answers and unreachable endpoints are retried with full-jitter backoff; every other
  AWS error is raised as AwsError with its code.
"""

from __future__ import annotations

import json
import os
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from node_agents.http import HttpClient, HttpStatusError, HttpUnreachable, Response
from node_agents.imds import Credentials, Imds
from node_agents.runtime import Clock, log, retry
from node_agents.sigv4 import sign

TIMEOUT = 10.0
ATTEMPTS = 6
BACKOFF_BASE = 0.5
BACKOFF_CAP = 20.0
THROTTLING_CODES = frozenset(
    (
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "SlowDown",
        "RequestThrottledException",
    )
)


@dataclass(frozen=True)
class Service:
    signing_name: str  # also the regional endpoint's host prefix
    service_id: str  # botocore's serviceId, as it appears in AWS_ENDPOINT_URL_<ID>
    api_version: str = ""  # query protocol only
    json_target: str = ""  # JSON protocol only: the X-Amz-Target prefix, e.g. AmazonSSM


QUERY_SERVICES = {
    "autoscaling": Service("autoscaling", "AUTO_SCALING", "2011-01-01"),
    "cloudwatch": Service("monitoring", "CLOUDWATCH", "2010-08-01"),
}
S3 = Service("s3", "S3")
SSM = Service("ssm", "SSM", json_target="AmazonSSM")


class AwsError(Exception):
    """AWS refused a call; `code` is AWS's error code (e.g. ValidationError, NoSuchKey)."""

    def __init__(self, what: str, status: int, code: str, message: str) -> None:
        super().__init__(f"{what}: HTTP {status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def xml_data(element: ET.Element) -> Any:
    """A query-protocol XML element as data: leaves are strings, `member` lists are lists."""
    children = list(element)
    if not children:
        return element.text or ""
    if all(_local(child.tag) == "member" for child in children):
        return [xml_data(child) for child in children]
    return {_local(child.tag): xml_data(child) for child in children}


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


def flatten(params: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Query-protocol parameters: {"A": {"B": 1}, "L": ["x"]} -> [("A.B", "1"), ("L.member.1", "x")]."""
    if isinstance(params, Mapping):
        return [pair for key, value in params.items() for pair in flatten(value, f"{prefix}.{key}" if prefix else key)]
    if isinstance(params, list | tuple):
        if not params:
            return [(prefix, "")]  # an explicitly empty list, as botocore sends it
        return [pair for n, value in enumerate(params, 1) for pair in flatten(value, f"{prefix}.member.{n}")]
    return [(prefix, _scalar(params))]


def error_of(what: str, status: int, body: bytes) -> AwsError:
    """AwsError from an error body (query protocol or S3 XML, JSON protocol); any other body keeps its text."""
    if body.lstrip().startswith(b"{"):
        return _json_error(what, status, body)
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return AwsError(what, status, f"HTTP{status}", body[:200].decode("utf-8", "replace"))
    fields = {_local(element.tag): element.text or "" for element in root.iter()}
    return AwsError(what, status, fields.get("Code", f"HTTP{status}"), fields.get("Message", ""))


def _json_error(what: str, status: int, body: bytes) -> AwsError:
    try:
        fields = json.loads(body)
    except ValueError:
        fields = {}
    if not isinstance(fields, dict):
        fields = {}
    # `__type` may carry a namespace: "com.amazonaws.ssm#ParameterNotFound".
    code = str(fields.get("__type", f"HTTP{status}")).rpartition("#")[2]
    return AwsError(what, status, code, str(fields.get("message", fields.get("Message", ""))))


# Signed with role credentials that expired in between: fetched again, then retried.
EXPIRED_CODES = frozenset(("ExpiredToken", "ExpiredTokenException", "RequestExpired"))


def retryable(error: Exception) -> bool:
    if isinstance(error, AwsError):
        return error.code in THROTTLING_CODES or error.code in EXPIRED_CODES or error.status >= 500
    return isinstance(error, HttpUnreachable)


def _env_credentials() -> Credentials | None:
    key, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    if key and secret:
        return Credentials(key, secret, os.environ.get("AWS_SESSION_TOKEN") or None)
    return None


class Aws:
    """One client for every service an agent calls; `agent` names it in retry log lines."""

    def __init__(self, *, agent: str, clock: Clock | None = None, imds: Imds | None = None) -> None:
        self.agent = agent
        self.clock = clock or Clock.from_env()
        self._imds = imds or Imds()
        self._static = _env_credentials()
        self._region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")

    @property
    def region(self) -> str:
        if self._region is None:
            self._region = self._imds.region()
        return self._region

    def credentials(self) -> Credentials:
        return self._static or self._imds.credentials(self.clock.now())

    @staticmethod
    def configured_endpoint(service: Service) -> str | None:
        configured = os.environ.get(f"AWS_ENDPOINT_URL_{service.service_id}") or os.environ.get("AWS_ENDPOINT_URL")
        return configured.rstrip("/") if configured else None

    def endpoint(self, service: Service) -> str:
        return self.configured_endpoint(service) or f"https://{service.signing_name}.{self.region}.amazonaws.com"

    def send(
        self,
        service: Service,
        what: str,
        method: str,
        target: str,
        *,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        base: str | None = None,
    ) -> Response:
        """A signed request to `(base or endpoint(service)) + target` (path and query, already encoded),
        retried on throttling, 5xx, expired credentials and unreachable endpoints. `what` names the call in
        errors and logs."""
        base = base or self.endpoint(service)

        def attempt() -> Response:
            signed = sign(
                method=method,
                url=base + target,
                headers=dict(headers or {}),
                body=body,
                credentials=self.credentials(),
                region=self.region,
                service=service.signing_name,
                when=datetime.fromtimestamp(self.clock.now(), UTC),
            )
            try:
                return HttpClient(base, timeout=TIMEOUT).request(method, target, body=body, headers=signed)
            except HttpStatusError as error:
                refused = error_of(what, error.status, error.body)
                if refused.code in EXPIRED_CODES:
                    self._imds.forget_credentials()
                raise refused from None

        def note(error: Exception, delay: float) -> None:
            log(self.agent, f"{what} failed ({error}); retrying in {delay:.1f}s")

        return retry(
            attempt,
            attempts=ATTEMPTS,
            base=BACKOFF_BASE,
            cap=BACKOFF_CAP,
            clock=self.clock,
            retryable=retryable,
            on_retry=note,
        )

    def call(self, service: str, action: str, params: Mapping[str, Any] | None = None) -> Any:
        """A query-protocol action; returns its `<Action>Result` as data ({} when the action has none)."""
        spec = QUERY_SERVICES[service]
        pairs = [("Action", action), ("Version", spec.api_version), *flatten(params or {})]
        body = urllib.parse.urlencode(pairs).encode("ascii")
        headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
        response = self.send(spec, f"{service} {action}", "POST", "/", body=body, headers=headers)
        result = ET.fromstring(response.body).find(f"{{*}}{action}Result")
        return {} if result is None or not len(result) else xml_data(result)

    def json_call(self, service: Service, action: str, params: Mapping[str, Any]) -> Any:
        """A JSON-protocol action (awsJson1_1): its response document."""
        headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": f"{service.json_target}.{action}"}
        body = json.dumps(params).encode("utf-8")
        response = self.send(service, f"{service.signing_name} {action}", "POST", "/", body=body, headers=headers)
        return response.json()
