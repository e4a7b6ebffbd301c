from __future__ import annotations
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
THROTTLING_CODES = frozenset(('Throttling', 'ThrottlingException', 'ThrottledException', 'RequestThrottled', 'RequestLimitExceeded', 'TooManyRequestsException', 'SlowDown', 'RequestThrottledException'))

@dataclass(frozen=True)
class Service:
    signing_name: str
    service_id: str
    api_version: str = ''
QUERY_SERVICES = {'autoscaling': Service('autoscaling', 'AUTO_SCALING', '2011-01-01'), 'cloudwatch': Service('monitoring', 'CLOUDWATCH', '2010-08-01')}
S3 = Service('s3', 'S3')

class AwsError(Exception):

    def __init__(self, what, status, code, message):
        super().__init__(f'{what}: HTTP {status} {code}: {message}')
        self.status = status
        self.code = code
        self.message = message

def _local(tag):
    return tag.rpartition('}')[2]

def xml_data(element):
    children = list(element)
    if not children:
        return element.text or ''
    if all((_local(child.tag) == 'member' for child in children)):
        return [xml_data(child) for child in children]
    return {_local(child.tag): xml_data(child) for child in children}

def _scalar(value):
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')
    return str(value)

def flatten(params, prefix=''):
    if isinstance(params, Mapping):
        return [pair for key, value in params.items() for pair in flatten(value, f'{prefix}.{key}' if prefix else key)]
    if isinstance(params, list | tuple):
        if not params:
            return [(prefix, '')]
        return [pair for n, value in enumerate(params, 1) for pair in flatten(value, f'{prefix}.member.{n}')]
    return [(prefix, _scalar(params))]

def error_of(what, status, body):
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return AwsError(what, status, f'HTTP{status}', body[:200].decode('utf-8', 'replace'))
    fields = {_local(element.tag): element.text or '' for element in root.iter()}
    return AwsError(what, status, fields.get('Code', f'HTTP{status}'), fields.get('Message', ''))
EXPIRED_CODES = frozenset(('ExpiredToken', 'ExpiredTokenException', 'RequestExpired'))

def retryable(error):
    if isinstance(error, AwsError):
        return error.code in THROTTLING_CODES or error.code in EXPIRED_CODES or error.status >= 500
    return isinstance(error, HttpUnreachable)

def _env_credentials():
    key, secret = (os.environ.get('AWS_ACCESS_KEY_ID'), os.environ.get('AWS_SECRET_ACCESS_KEY'))
    if key and secret:
        return Credentials(key, secret, os.environ.get('AWS_SESSION_TOKEN') or None)
    return None

class Aws:

    def __init__(self, *, agent, clock=None, imds=None):
        self.agent = agent
        self.clock = clock or Clock.from_env()
        self._imds = imds or Imds()
        self._static = _env_credentials()
        self._region = os.environ.get('AWS_REGION') or os.environ.get('AWS_DEFAULT_REGION')

    @property
    def region(self):
        if self._region is None:
            self._region = self._imds.region()
        return self._region

    def credentials(self):
        return self._static or self._imds.credentials(self.clock.now())

    @staticmethod
    def configured_endpoint(service):
        configured = os.environ.get(f'AWS_ENDPOINT_URL_{service.service_id}') or os.environ.get('AWS_ENDPOINT_URL')
        return configured.rstrip('/') if configured else None

    def endpoint(self, service):
        return self.configured_endpoint(service) or f'https://{service.signing_name}.{self.region}.amazonaws.com'

    def send(self, service, what, method, target, *, body=b'', headers=None, base=None):
        base = base or self.endpoint(service)

        def attempt():
            signed = sign(method=method, url=base + target, headers=dict(headers or {}), body=body, credentials=self.credentials(), region=self.region, service=service.signing_name, when=datetime.fromtimestamp(self.clock.now(), UTC))
            try:
                return HttpClient(base, timeout=TIMEOUT).request(method, target, body=body, headers=signed)
            except HttpStatusError as error:
                refused = error_of(what, error.status, error.body)
                if refused.code in EXPIRED_CODES:
                    self._imds.forget_credentials()
                raise refused from None

        def note(error, delay):
            log(self.agent, f'{what} failed ({error}); retrying in {delay:.1f}s')
        return retry(attempt, attempts=ATTEMPTS, base=BACKOFF_BASE, cap=BACKOFF_CAP, clock=self.clock, retryable=retryable, on_retry=note)

    def call(self, service, action, params=None):
        spec = QUERY_SERVICES[service]
        pairs = [('Action', action), ('Version', spec.api_version), *flatten(params or {})]
        body = urllib.parse.urlencode(pairs).encode('ascii')
        headers = {'Content-Type': 'application/x-www-form-urlencoded; charset=utf-8'}
        response = self.send(spec, f'{service} {action}', 'POST', '/', body=body, headers=headers)
        result = ET.fromstring(response.body).find(f'{{*}}{action}Result')
        return {} if result is None or not len(result) else xml_data(result)
