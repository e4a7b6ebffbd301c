"""Consul's HTTP API as the agents use it: KV, raft status, snapshots and autopilot.

The address comes from CONSUL_HTTP_ADDR (as for the `consul` CLI; `host:port` means http), default
the local agent; CONSUL_HTTP_TOKEN is sent when set."""

from __future__ import annotations

import base64
import os
import urllib.parse
from dataclasses import dataclass
from typing import Any

from node_agents.http import HttpClient, Response

DEFAULT_ADDRESS = "http://127.0.0.1:8500"
# Snapshots of a large KV store take a while to stream; everything else answers fast.
TIMEOUT = 10.0
SNAPSHOT_TIMEOUT = 120.0


@dataclass(frozen=True)
class KvEntry:
    key: str
    value: bytes
    modify_index: int
    session: str = ""  # the session holding the key as a lock; "" when unlocked


def _address(address: str | None) -> str:
    value = address or os.environ.get("CONSUL_HTTP_ADDR") or DEFAULT_ADDRESS
    return value if "://" in value else f"http://{value}"


class Consul:
    def __init__(self, address: str | None = None) -> None:
        base = _address(address)
        token = os.environ.get("CONSUL_HTTP_TOKEN")
        headers = {"X-Consul-Token": token} if token else {}
        self._http = HttpClient(base, timeout=TIMEOUT, headers=headers)
        self._slow = HttpClient(base, timeout=SNAPSHOT_TIMEOUT, headers=headers)

    @staticmethod
    def _kv_path(key: str) -> str:
        return "/v1/kv/" + urllib.parse.quote(key, safe="/")

    def _get(self, path: str, query: dict[str, str] | None = None) -> Response:
        return self._http.request("GET", path, query=query, ok=(404,))

    def kv_get(self, key: str) -> KvEntry | None:
        response = self._get(self._kv_path(key))
        if response.status == 404:
            return None
        return _entry(response.json()[0])

    def kv_list(self, prefix: str) -> list[KvEntry]:
        """Every entry under `prefix` (`?recurse`)."""
        response = self._get(self._kv_path(prefix), {"recurse": ""})
        return [] if response.status == 404 else [_entry(item) for item in response.json()]

    def kv_keys(self, prefix: str, separator: str | None = None) -> list[str]:
        """Key names under `prefix` (`?keys`, folded at `separator` when given)."""
        query = {"keys": ""} | ({"separator": separator} if separator else {})
        response = self._get(self._kv_path(prefix), query)
        return [] if response.status == 404 else [str(key) for key in response.json()]

    def kv_put(self, key: str, value: bytes, *, cas: int | None = None) -> bool:
        """Writes `value`; with `cas`, only if the key's ModifyIndex is still `cas` (0: only if absent)."""
        query = {"cas": str(cas)} if cas is not None else None
        response = self._http.request("PUT", self._kv_path(key), query=query, body=value)
        return bool(response.json())

    def kv_delete(self, key: str, *, recurse: bool = False) -> None:
        query = {"recurse": ""} if recurse else None
        self._http.request("DELETE", self._kv_path(key), query=query)

    def session_destroy(self, session: str) -> None:
        """Ends `session`: the locks it holds are released (or their keys deleted, per its behavior)."""
        self._http.request("PUT", f"/v1/session/destroy/{urllib.parse.quote(session, safe='')}")

    def leader(self) -> str | None:
        """The raft leader's `ip:port`; None while the cluster has none."""
        return str(self._http.get_json("/v1/status/leader")) or None

    def peers(self) -> list[str]:
        return [str(peer) for peer in self._http.get_json("/v1/status/peers")]

    def snapshot_save(self) -> bytes:
        """A consistent snapshot (the leader answers it), as `consul snapshot save` writes it."""
        return self._slow.request("GET", "/v1/snapshot").body

    def snapshot_restore(self, snapshot: bytes) -> None:
        """Replaces the cluster's whole state with `snapshot`'s (`consul snapshot restore`)."""
        self._slow.request("PUT", "/v1/snapshot", body=snapshot)

    def autopilot_configuration(self) -> dict[str, Any]:
        return dict(self._http.get_json("/v1/operator/autopilot/configuration"))

    def set_autopilot_configuration(self, configuration: dict[str, Any]) -> None:
        self._http.send_json("PUT", "/v1/operator/autopilot/configuration", configuration)


def _entry(item: dict[str, Any]) -> KvEntry:
    raw = item.get("Value")
    value = base64.b64decode(raw) if raw else b""
    return KvEntry(str(item["Key"]), value, int(item["ModifyIndex"]), str(item.get("Session") or ""))
