from __future__ import annotations
import hashlib
import hmac
import urllib.parse
from datetime import UTC, datetime
from node_agents.imds import Credentials
ALGORITHM = 'AWS4-HMAC-SHA256'

def _hmac(key, message):
    return hmac.new(key, message.encode('utf-8'), hashlib.sha256).digest()

def host_of(url):
    parts = urllib.parse.urlsplit(url)
    default = {'http': 80, 'https': 443}.get(parts.scheme)
    host = parts.hostname or ''
    return host if parts.port in (None, default) else f'{host}:{parts.port}'

def _canonical_query(query):
    pairs = [pair.partition('=') for pair in query.split('&')] if query else []
    return '&'.join((f'{key}={value}' for key, _, value in sorted(((k, s, v) for k, s, v in pairs))))

def _canonical_uri(path, service):
    return path or '/' if service == 's3' else urllib.parse.quote(path or '/', safe='/~')

def sign(*, method, url, headers, body, credentials, region, service, when):
    stamp = when.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')
    payload_hash = hashlib.sha256(body).hexdigest()
    signed = {**headers, 'Host': host_of(url), 'X-Amz-Date': stamp}
    if credentials.token:
        signed['X-Amz-Security-Token'] = credentials.token
    if service == 's3':
        signed['X-Amz-Content-SHA256'] = payload_hash
    canonical_headers = {name.lower(): ' '.join(value.split()) for name, value in signed.items()}
    names = sorted(canonical_headers)
    parts = urllib.parse.urlsplit(url)
    canonical_request = '\n'.join([method.upper(), _canonical_uri(parts.path, service), _canonical_query(parts.query), ''.join((f'{name}:{canonical_headers[name]}\n' for name in names)), ';'.join(names), payload_hash])
    scope = f'{stamp[:8]}/{region}/{service}/aws4_request'
    string_to_sign = '\n'.join([ALGORITHM, stamp, scope, hashlib.sha256(canonical_request.encode('utf-8')).hexdigest()])
    key = _hmac(f'AWS4{credentials.secret_key}'.encode(), stamp[:8])
    for part in (region, service, 'aws4_request'):
        key = _hmac(key, part)
    signature = hmac.new(key, string_to_sign.encode('utf-8'), hashlib.sha256).hexdigest()
    signed['Authorization'] = f"{ALGORITHM} Credential={credentials.access_key}/{scope}, SignedHeaders={';'.join(names)}, Signature={signature}"
    return signed
