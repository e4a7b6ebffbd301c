from __future__ import annotations
import http.client
import json
import socket
import urllib.parse
from dataclasses import dataclass
from typing import Any
DEFAULT_TIMEOUT = 10.0

class HttpError(Exception):

    def __init__(self, url, message):
        super().__init__(f'{url}: {message}')
        self.url = url

class HttpUnreachable(HttpError):
    pass

class HttpStatusError(HttpError):

    def __init__(self, url, status, body):
        super().__init__(url, f"HTTP {status}: {body[:300].decode('utf-8', 'replace').strip()}")
        self.status = status
        self.body = body

@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body) if self.body else None

class _UnixConnection(http.client.HTTPConnection):

    def __init__(self, socket_path, timeout):
        super().__init__('localhost', timeout=timeout)
        self._socket_path = socket_path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock

class HttpClient:

    def __init__(self, base, *, timeout=DEFAULT_TIMEOUT, headers=None):
        parsed = urllib.parse.urlsplit(base)
        if parsed.scheme not in ('http', 'https', 'tcp', 'unix'):
            raise ValueError(f'{base!r}: expected http://, https://, tcp:// or unix://')
        self.base = base.rstrip('/')
        self.timeout = timeout
        self._headers = headers or {}
        self._parsed = parsed

    def _connection(self):
        if self._parsed.scheme == 'unix':
            return _UnixConnection(self._parsed.path, self.timeout)
        if self._parsed.scheme == 'https':
            return http.client.HTTPSConnection(self._parsed.netloc, timeout=self.timeout)
        return http.client.HTTPConnection(self._parsed.netloc, timeout=self.timeout)

    def request(self, method, path, *, query=None, body=None, headers=None, ok=()):
        prefix = '' if self._parsed.scheme == 'unix' else self._parsed.path.rstrip('/')
        target = prefix + path + (f'?{urllib.parse.urlencode(query)}' if query else '')
        url = f'{self.base}{path}'
        connection = self._connection()
        try:
            connection.request(method, target, body=body, headers={**self._headers, **(headers or {})})
            answer = connection.getresponse()
            response = Response(answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read())
        except (OSError, http.client.HTTPException) as error:
            raise HttpUnreachable(url, f'{method} failed: {error}') from error
        finally:
            connection.close()
        if not (200 <= response.status < 300 or response.status in ok):
            raise HttpStatusError(url, response.status, response.body)
        return response

    def get_json(self, path, *, query=None, ok=()):
        return self.request('GET', path, query=query, ok=ok).json()

    def send_json(self, method, path, payload=None, *, query=None, ok=()):
        body = None if payload is None else json.dumps(payload).encode('utf-8')
        headers = {'Content-Type': 'application/json'} if body is not None else {}
        return self.request(method, path, query=query, body=body, headers=headers, ok=ok).json()
