"""FakeAws: AWS query-protocol services (Auto Scaling, CloudWatch), SSM Parameter Store (JSON protocol) and
path-style S3, on one endpoint.

    with FakeAws(buckets=["backups"]) as aws:
        env = {"AWS_ENDPOINT_URL": aws.url, **aws.env()}    # region and credentials for the agent
        ...run the agent...
        assert aws.violations == []                       # every call matched botocore's model
        assert aws.calls_of("CompleteLifecycleAction")[0]["InstanceId"] == "i-0123456789abcdef0"

What it checks on EVERY request, answering like AWS when a check fails (and listing it in
`violations`):
- the SigV4 signature, recomputed with botocore's own signer from the request as received, for the
  keys in `credentials` (403 SignatureDoesNotMatch / InvalidClientTokenId);
- the service from the credential scope (`autoscaling`, `monitoring`, `s3`, `ssm`) and, for query calls,
  `Action` and `Version` (JSON calls: `X-Amz-Target` and the awsJson1_1 content type);
- the parameters: parsed back from the wire (query `A.member.N` / `A.B` keys; JSON bodies; S3 URI, query
  string and headers) into the operation's input shape, then validated with `botocore.validate`. Unknown,
  missing or mistyped parameters answer 400 with the service's error code.

Calls are recorded in `calls` as Call(service, action, params, at) with params in botocore's input form and `at`
the fake's monotonic clock when the call arrived.
Scripting: `respond(action, result)` sets an action's result (a dict, or a function of the params);
`fail(code, action=..., times=...)` makes the next calls fail; `throttle(times)` answers throttling
errors (S3: 503 SlowDown). S3 keeps every version of every object in memory (`objects`). SSM serves
GetParameter from `parameters` (`put_parameter(name, value)`): ParameterNotFound for any other name, and a
SecureString's value only WithDecryption (else a stand-in ciphertext, as SSM returns).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

import botocore.session
from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ParamValidationError
from botocore.model import OperationModel, Shape, StructureShape
from botocore.validate import validate_parameters

from tests.fakes.server import FakeServer, Reply, Request

ACCESS_KEY = "AKIAFAKEAGENTS000001"
SECRET_KEY = "fake/secret/key/for/node/agents/tests00000"
SESSION_TOKEN = "FakeSessionToken"
REGION = "eu-west-1"

_SESSION = botocore.session.get_session()
# signing name -> botocore service name, and each query service's own error code for bad input
_QUERY = {"autoscaling": "autoscaling", "monitoring": "cloudwatch"}
_JSON = {"ssm": "ssm"}
_VALIDATION_CODE = {
    "autoscaling": "ValidationError",
    "cloudwatch": "InvalidParameterValue",
    "ssm": "ValidationException",
}
_THROTTLE_CODE = {
    "autoscaling": "Throttling",
    "cloudwatch": "Throttling",
    "s3": "SlowDown",
    "ssm": "ThrottlingException",
}
_S3_IGNORED_HEADERS = frozenset(
    ("host", "authorization", "x-amz-date", "x-amz-content-sha256", "x-amz-security-token", "content-length")
)
_JSON_TYPE = "application/x-amz-json-1.1"
_CREDENTIAL = re.compile(
    r"Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, SignedHeaders=([^,]+), Signature=(\w+)"
)


@dataclass(frozen=True)
class Call:
    service: str  # botocore's name: autoscaling, cloudwatch, s3
    action: str
    params: dict[str, Any]
    at: float = field(default_factory=time.monotonic)


@dataclass
class S3Version:
    body: bytes
    version_id: str
    last_modified: datetime
    headers: dict[str, str]  # x-amz-server-side-encryption and the like, as sent

    @property
    def etag(self) -> str:
        return f'"{hashlib.md5(self.body).hexdigest()}"'


@dataclass(frozen=True)
class SsmParameter:
    value: str
    type: str = "SecureString"


@dataclass
class _Failure:
    code: str
    status: int
    message: str
    action: str | None
    times: int | None


class AwsFault(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message = status, code, message


@dataclass
class FakeAws(FakeServer):
    """See the module docstring."""

    buckets: list[str] = field(default_factory=list)
    credentials: dict[str, str] = field(default_factory=lambda: {ACCESS_KEY: SECRET_KEY})
    region: str = REGION
    s3_page_size: int = 1000  # ListObjectsV2 pages; make it small to exercise continuation tokens

    def __post_init__(self) -> None:
        super().__init__()
        self.calls: list[Call] = []
        self.violations: list[str] = []
        self.objects: dict[str, dict[str, list[S3Version]]] = {bucket: {} for bucket in self.buckets}
        self.parameters: dict[str, SsmParameter] = {}
        self._results: dict[str, dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any]]] = {}
        self._failures: list[_Failure] = []
        self._versions = itertools.count(1)

    def env(self) -> dict[str, str]:
        """Environment for an agent process: every AWS endpoint here, region, static fake credentials."""
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_REGION": self.region,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        }

    # -- scripting --------------------------------------------------------------------------------

    def respond(self, action: str, result: dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        """The `<Action>Result` content of every later `action` call (lists become `member` items)."""
        with self.lock:
            self._results[action] = result

    def fail(
        self, code: str, *, action: str | None = None, status: int = 400, message: str = "", times: int | None = 1
    ) -> None:
        """The next `times` calls (of `action`, or any) answer this AWS error; times=None: until cleared."""
        with self.lock:
            self._failures.append(_Failure(code, status, message or f"scripted {code}", action, times))

    def throttle(self, times: int = 1, *, action: str | None = None) -> None:
        """The next `times` calls answer the service's throttling error (query: 400 Throttling, S3: 503 SlowDown)."""
        self.fail("Throttling", action=action, times=times)

    def clear_failures(self) -> None:
        with self.lock:
            self._failures.clear()

    def calls_of(self, action: str) -> list[dict[str, Any]]:
        with self.lock:
            return [call.params for call in self.calls if call.action == action]

    def create_bucket(self, name: str) -> None:
        with self.lock:
            self.objects.setdefault(name, {})

    def put(self, bucket: str, key: str, body: bytes, *, when: datetime | None = None) -> S3Version:
        """Stores an object directly (test setup); `when` backdates it."""
        with self.lock:
            version = S3Version(body, f"v{next(self._versions)}", when or datetime.now(UTC), {})
            self.objects[bucket].setdefault(key, []).append(version)
            return version

    def put_parameter(self, name: str, value: str, type_: str = "SecureString") -> None:
        with self.lock:
            self.parameters[name] = SsmParameter(value, type_)

    def latest(self, bucket: str, key: str) -> S3Version | None:
        with self.lock:
            versions = self.objects.get(bucket, {}).get(key)
            return versions[-1] if versions else None

    # -- dispatch ---------------------------------------------------------------------------------

    def handle(self, request: Request) -> Reply:
        try:
            signing_name = self._check_signature(request)
            if signing_name == "s3":
                return self._s3(request)
            if signing_name in _JSON:
                return self._json(_JSON[signing_name], request)
            service = _QUERY.get(signing_name)
            if service is None:
                raise AwsFault(400, "UnknownService", f"this fake serves no {signing_name!r}")
            return self._query(service, request)
        except AwsFault as fault:
            return self._error(request, fault)

    def _violation(self, status: int, code: str, message: str) -> AwsFault:
        self.violations.append(f"{code}: {message}")
        return AwsFault(status, code, message)

    def _scripted_failure(self, service: str, action: str) -> None:
        for failure in self._failures:
            if failure.action in (None, action) and failure.times != 0:
                if failure.times is not None:
                    failure.times -= 1
                code = _THROTTLE_CODE[service] if failure.code == "Throttling" else failure.code
                status = 503 if code == "SlowDown" else failure.status
                raise AwsFault(status, code, failure.message)

    def _check_signature(self, request: Request) -> str:
        match = _CREDENTIAL.search(request.headers.get("authorization", ""))
        if not match:
            raise self._violation(403, "MissingAuthenticationToken", "no SigV4 Authorization header")
        access_key, _, region, service, signed_headers, signature = match.groups()
        secret = self.credentials.get(access_key)
        if secret is None:
            raise self._violation(403, "InvalidClientTokenId", f"unknown access key {access_key}")
        if region != self.region:
            raise self._violation(403, "SignatureDoesNotMatch", f"credential scope region {region} != {self.region}")
        headers = {name: request.headers.get(name, "") for name in signed_headers.split(";")}
        aws_request = AWSRequest(
            method=request.method,
            url=f"http://{request.headers['host']}{request.raw_path}",
            headers=headers,
            data=request.body,
        )
        aws_request.context["timestamp"] = headers.get("x-amz-date", "")
        signer_class = S3SigV4Auth if service == "s3" else SigV4Auth
        signer = signer_class(
            Credentials(access_key, secret, request.headers.get("x-amz-security-token")), service, region
        )
        expected = signer.signature(
            signer.string_to_sign(aws_request, signer.canonical_request(aws_request)), aws_request
        )
        if expected != signature:
            raise self._violation(
                403, "SignatureDoesNotMatch", f"signature mismatch for {request.method} {request.raw_path}"
            )
        return service

    def _error(self, request: Request, fault: AwsFault) -> Reply:
        if "x-amz-target" in request.headers:
            return Reply.json({"__type": fault.code, "message": fault.message}, fault.status, _JSON_TYPE)
        if "/s3/aws4_request" in request.headers.get("authorization", ""):
            inner = f"<Code>{fault.code}</Code><Message>{escape(fault.message)}</Message>"
            return Reply.text(f"<Error>{inner}<RequestId>fake</RequestId></Error>", fault.status, "application/xml")
        kind = "Receiver" if fault.status >= 500 else "Sender"
        body = (
            f"<ErrorResponse><Error><Type>{kind}</Type><Code>{fault.code}</Code>"
            f"<Message>{escape(fault.message)}</Message></Error><RequestId>fake</RequestId></ErrorResponse>"
        )
        return Reply.text(body, fault.status, "text/xml")

    # -- query protocol ---------------------------------------------------------------------------

    def _query(self, service: str, request: Request) -> Reply:
        model = _SESSION.get_service_model(service)
        form = dict(urllib.parse.parse_qsl(request.body.decode(), keep_blank_values=True))
        action, version = form.pop("Action", ""), form.pop("Version", "")
        if action not in model.operation_names:
            raise self._violation(400, "InvalidAction", f"{service} has no action {action!r}")
        if version != model.api_version:
            raise self._violation(400, "InvalidParameterValue", f"{action}: Version {version!r} != {model.api_version}")
        operation = model.operation_model(action)
        params = self._parse_query(service, operation, form)
        self.calls.append(Call(service, action, params))
        self._scripted_failure(service, action)
        result = self._results.get(action, {})
        content = _to_xml(result(params) if callable(result) else result)
        namespace = model.metadata["xmlNamespace"]
        inner = f"<{action}Result>{content}</{action}Result>" if operation.output_shape is not None else ""
        body = (
            f'<{action}Response xmlns="{namespace}">{inner}'
            f"<ResponseMetadata><RequestId>fake</RequestId></ResponseMetadata></{action}Response>"
        )
        return Reply.text(body, 200, "text/xml")

    def _parse_query(self, service: str, operation: OperationModel, form: dict[str, str]) -> dict[str, Any]:
        problems: list[str] = []
        used: set[str] = set()
        shape = operation.input_shape
        params = _unflatten(shape, "", form, used, problems) if shape is not None else {}
        problems += [f"unknown parameter {key}" for key in sorted(set(form) - used)]
        try:
            if shape is not None:
                validate_parameters(params, shape)
        except ParamValidationError as error:
            problems.append(str(error))
        if problems:
            code = "MissingParameter" if service == "cloudwatch" and "Missing required" in "".join(problems) else None
            raise self._violation(400, code or _VALIDATION_CODE[service], f"{operation.name}: " + "; ".join(problems))
        return params if isinstance(params, dict) else {}

    # -- JSON protocol (SSM) ----------------------------------------------------------------------

    def _json(self, service: str, request: Request) -> Reply:
        model = _SESSION.get_service_model(service)
        prefix, _, action = request.headers.get("x-amz-target", "").partition(".")
        if prefix != model.metadata["targetPrefix"] or action not in model.operation_names:
            raise self._violation(400, "UnknownOperationException", f"X-Amz-Target {prefix}.{action}")
        content_type = request.headers.get("content-type", "")
        if content_type != f"application/x-amz-json-{model.metadata['jsonVersion']}":
            raise self._violation(400, "SerializationException", f"{action}: content type {content_type!r}")
        try:
            params = json.loads(request.body or b"{}")
            validate_parameters(params, model.operation_model(action).input_shape)
        except (ValueError, ParamValidationError) as error:
            raise self._violation(400, _VALIDATION_CODE[service], f"{action}: {error}") from None
        self.calls.append(Call(service, action, params))
        self._scripted_failure(service, action)
        return Reply.json(getattr(self, f"_ssm_{action}")(params), content_type=_JSON_TYPE)

    def _ssm_GetParameter(self, params: dict[str, Any]) -> dict[str, Any]:
        name = params["Name"]
        stored = self.parameters.get(name)
        if stored is None:
            raise AwsFault(400, "ParameterNotFound", f"Parameter {name} not found.")
        hidden = stored.type == "SecureString" and not params.get("WithDecryption")
        value = "AQICAHfakeciphertext" if hidden else stored.value
        arn = f"arn:aws:ssm:{self.region}:123456789012:parameter/{name.lstrip('/')}"
        return {"Parameter": {"Name": name, "Type": stored.type, "Value": value, "Version": 1, "ARN": arn}}

    # -- S3 ---------------------------------------------------------------------------------------

    def _s3(self, request: Request) -> Reply:
        bucket, _, key = request.path.lstrip("/").partition("/")
        action = _s3_action(request.method, key, request.query)
        operation = _SESSION.get_service_model("s3").operation_model(action)
        params = self._parse_s3(operation, request, bucket, key)
        self.calls.append(Call("s3", action, params))
        self._scripted_failure("s3", action)
        if bucket not in self.objects:
            raise AwsFault(404, "NoSuchBucket", f"no bucket {bucket}")
        return getattr(self, f"_s3_{action}")(request, bucket, key)

    def _parse_s3(self, operation: OperationModel, request: Request, bucket: str, key: str) -> dict[str, Any]:
        problems: list[str] = []
        params: dict[str, Any] = {"Bucket": bucket}
        if key:
            params["Key"] = key
        shape = operation.input_shape
        by_query = {
            m.serialization.get("name"): (n, m)
            for n, m in shape.members.items()
            if m.serialization.get("location") == "querystring"
        }
        by_header = {
            str(m.serialization.get("name", "")).lower(): (n, m)
            for n, m in shape.members.items()
            if m.serialization.get("location") == "header"
        }
        fixed_query = dict(
            urllib.parse.parse_qsl(operation.http["requestUri"].partition("?")[2], keep_blank_values=True)
        )
        for name, value in request.query.items():
            if name in fixed_query:
                if fixed_query[name] not in ("", value):
                    problems.append(f"query {name}={value!r}, expected {fixed_query[name]!r}")
            elif name in by_query:
                params[by_query[name][0]] = _scalar(by_query[name][1], value, name, problems)
            else:
                problems.append(f"unknown query parameter {name}")
        for name, value in request.headers.items():
            if name in by_header:
                params[by_header[name][0]] = _scalar(by_header[name][1], value, name, problems)
            elif name.startswith("x-amz-") and name not in _S3_IGNORED_HEADERS:
                problems.append(f"unknown header {name}")
        if "Body" in shape.members and request.body:
            params["Body"] = request.body
        try:
            validate_parameters(params, shape)
        except ParamValidationError as error:
            problems.append(str(error))
        if problems:
            raise self._violation(400, "InvalidArgument", f"{operation.name}: " + "; ".join(problems))
        return params

    def _s3_PutObject(self, request: Request, bucket: str, key: str) -> Reply:
        sse = {k: v for k, v in request.headers.items() if k.startswith("x-amz-server-side-encryption")}
        version = S3Version(request.body, f"v{next(self._versions)}", datetime.now(UTC), sse)
        self.objects[bucket].setdefault(key, []).append(version)
        return Reply(200, b"", {"ETag": version.etag, "x-amz-version-id": version.version_id, **sse})

    def _s3_GetObject(self, request: Request, bucket: str, key: str) -> Reply:
        versions = self.objects[bucket].get(key)
        if not versions:
            raise AwsFault(404, "NoSuchKey", "The specified key does not exist.")
        latest = versions[-1]
        return Reply(200, latest.body, {"ETag": latest.etag, "x-amz-version-id": latest.version_id})

    def _s3_ListObjectsV2(self, request: Request, bucket: str, key: str) -> Reply:
        prefix = request.query.get("prefix", "")
        keys = sorted(k for k, v in self.objects[bucket].items() if k.startswith(prefix) and v)
        start = int(request.query.get("continuation-token", "0") or 0)
        page_size = min(self.s3_page_size, int(request.query.get("max-keys", "1000")))
        page = keys[start : start + page_size]
        truncated = start + page_size < len(keys)
        contents = "".join(
            f"<Contents><Key>{escape(k)}</Key><LastModified>{v.last_modified.strftime('%Y-%m-%dT%H:%M:%S.000Z')}</LastModified>"
            f"<ETag>{escape(v.etag)}</ETag><Size>{len(v.body)}</Size><StorageClass>STANDARD</StorageClass></Contents>"
            for k in page
            for v in [self.objects[bucket][k][-1]]
        )
        token = f"<NextContinuationToken>{start + page_size}</NextContinuationToken>" if truncated else ""
        body = (
            '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            f"<Name>{bucket}</Name><Prefix>{escape(prefix)}</Prefix><KeyCount>{len(page)}</KeyCount>"
            f"<MaxKeys>{page_size}</MaxKeys><IsTruncated>{'true' if truncated else 'false'}</IsTruncated>"
            f"{contents}{token}</ListBucketResult>"
        )
        return Reply.text(body, 200, "application/xml")


def _s3_action(method: str, key: str, query: dict[str, str]) -> str:
    if not key:
        if method == "GET" and query.get("list-type") == "2":
            return "ListObjectsV2"
        raise AwsFault(400, "NotImplemented", f"{method} on a bucket without list-type=2 is not faked")
    actions = {"PUT": "PutObject", "GET": "GetObject"}
    if method not in actions or set(query) - {"versionId"}:
        raise AwsFault(400, "NotImplemented", f"{method} ?{'&'.join(query)} on an object is not faked")
    return actions[method]


def _scalar(shape: Shape, raw: str, where: str, problems: list[str]) -> Any:
    """A wire string as the value botocore's input form has for `shape` (problems noted, not raised)."""
    try:
        if shape.type_name in ("integer", "long"):
            return int(raw)
        if shape.type_name in ("double", "float"):
            return float(raw)
        if shape.type_name == "boolean":
            if raw not in ("true", "false"):
                raise ValueError(raw)
            return raw == "true"
        if shape.type_name == "timestamp":
            return datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        problems.append(f"{where}: {raw!r} is not a valid {shape.type_name}")
        return raw
    return raw


def _unflatten(shape: Shape, prefix: str, form: dict[str, str], used: set[str], problems: list[str]) -> Any:
    """Query-protocol keys (`A.member.1.B`) back into botocore's input form, driven by `shape`."""
    if isinstance(shape, StructureShape):
        out = {}
        for name, member in shape.members.items():
            wire = member.serialization.get("name", name)
            key = f"{prefix}.{wire}" if prefix else wire
            if key in form or any(k.startswith(key + ".") for k in form):
                out[name] = _unflatten(member, key, form, used, problems)
        return out
    if shape.type_name == "list":
        if form.get(prefix) == "":
            used.add(prefix)
            return []
        items, n = [], 1
        member_prefix = f"{prefix}.member" if not shape.serialization.get("flattened") else prefix
        while f"{member_prefix}.{n}" in form or any(k.startswith(f"{member_prefix}.{n}.") for k in form):
            items.append(_unflatten(shape.member, f"{member_prefix}.{n}", form, used, problems))  # type: ignore[attr-defined]
            n += 1
        return items
    if shape.type_name == "map":
        out, n = {}, 1
        while f"{prefix}.entry.{n}.key" in form:
            used.add(f"{prefix}.entry.{n}.key")
            out[form[f"{prefix}.entry.{n}.key"]] = _unflatten(
                shape.value, f"{prefix}.entry.{n}.value", form, used, problems
            )  # type: ignore[attr-defined]
            n += 1
        return out
    used.add(prefix)
    return _scalar(shape, form.get(prefix, ""), prefix, problems)


def _to_xml(data: Any) -> str:
    if isinstance(data, dict):
        return "".join(f"<{key}>{_to_xml(value)}</{key}>" for key, value in data.items())
    if isinstance(data, list | tuple):
        return "".join(f"<member>{_to_xml(item)}</member>" for item in data)
    if isinstance(data, bool):
        return "true" if data else "false"
    if isinstance(data, datetime):
        return data.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return escape(str(data))
