from __future__ import annotations
import base64
import os
import urllib.parse
from dataclasses import dataclass
from typing import Any
from node_agents.http import HttpClient, Response
DEFAULT_ADDRESS = 'http://127.0.0.1:8500'
TIMEOUT = 10.0
SNAPSHOT_TIMEOUT = 120.0

@dataclass(frozen=True)
class KvEntry:
    key: str
    value: bytes
    modify_index: int
    session: str = ''

def _address(address):
    value = address or os.environ.get('CONSUL_HTTP_ADDR') or DEFAULT_ADDRESS
    return value if '://' in value else f'http://{value}'

class Consul:

    def __init__(self, address=None):
        base = _address(address)
        token = os.environ.get('CONSUL_HTTP_TOKEN')
        headers = {'X-Consul-Token': token} if token else {}
        self._http = HttpClient(base, timeout=TIMEOUT, headers=headers)
        self._slow = HttpClient(base, timeout=SNAPSHOT_TIMEOUT, headers=headers)

    @staticmethod
    def _kv_path(key):
        return '/v1/kv/' + urllib.parse.quote(key, safe='/')

    def _get(self, path, query=None):
        return self._http.request('GET', path, query=query, ok=(404,))

    def kv_get(self, key):
        response = self._get(self._kv_path(key))
        if response.status == 404:
            return None
        return _entry(response.json()[0])

    def kv_list(self, prefix):
        response = self._get(self._kv_path(prefix), {'recurse': ''})
        return [] if response.status == 404 else [_entry(item) for item in response.json()]

    def kv_keys(self, prefix, separator=None):
        query = {'keys': ''} | ({'separator': separator} if separator else {})
        response = self._get(self._kv_path(prefix), query)
        return [] if response.status == 404 else [str(key) for key in response.json()]

    def kv_put(self, key, value, *, cas=None):
        query = {'cas': str(cas)} if cas is not None else None
        response = self._http.request('PUT', self._kv_path(key), query=query, body=value)
        return bool(response.json())

    def kv_delete(self, key, *, recurse=False):
        query = {'recurse': ''} if recurse else None
        self._http.request('DELETE', self._kv_path(key), query=query)

    def session_destroy(self, session):
        self._http.request('PUT', f"/v1/session/destroy/{urllib.parse.quote(session, safe='')}")

    def leader(self):
        return str(self._http.get_json('/v1/status/leader')) or None

    def peers(self):
        return [str(peer) for peer in self._http.get_json('/v1/status/peers')]

    def snapshot_save(self):
        return self._slow.request('GET', '/v1/snapshot').body

    def snapshot_restore(self, snapshot):
        self._slow.request('PUT', '/v1/snapshot', body=snapshot)

    def autopilot_configuration(self):
        return dict(self._http.get_json('/v1/operator/autopilot/configuration'))

    def set_autopilot_configuration(self, configuration):
        self._http.send_json('PUT', '/v1/operator/autopilot/configuration', configuration)

def _entry(item):
    raw = item.get('Value')
    value = base64.b64decode(raw) if raw else b''
    return KvEntry(str(item['Key']), value, int(item['ModifyIndex']), str(item.get('Session') or ''))
