"""FakeConsul: the parts of Consul's HTTP API the agents use.

    with FakeConsul(leader="10.30.0.10:8300", peers=[...]) as consul:
        env = {"CONSUL_HTTP_ADDR": consul.url}
        consul.kv["docker/nodes/10.30.1.23:2375"] = b"10.30.1.23:2375"
        consul.set_leader(None)                 # no leader: /v1/status/leader answers ""
        consul.set_leader("10.30.0.11:8300")    # a leader change

- KV (`/v1/kv/<key>`): GET (one key, `?recurse`, `?keys` with `separator`, `?raw`), PUT (`?cas=<index>`,
  0 = only if absent), DELETE (`?recurse`). Every write bumps a global index like raft's; entries carry
  CreateIndex/ModifyIndex. `kv` is a plain dict the test can read and change.
- Locks: `hold(key, value, session)` makes a key held by a session (entries show `Session`);
  PUT `/v1/session/destroy/<id>` releases what that session holds (behavior "release": the key stays,
  unlocked) and records the id in `destroyed_sessions`.
- Status: `/v1/status/leader`, `/v1/status/peers`.
- Snapshots: GET `/v1/snapshot` returns the KV store in Consul's archive format (snapshot/archive.go:
  a gzip'd tar of meta.json, state.bin and SHA256SUMS; state.bin holds the KV store as JSON where Consul
  has its msgpack'd state) and counts in `snapshots_taken`; without a leader it answers 500 "No
  cluster leader" like Consul. PUT `/v1/snapshot` with such bytes replaces the whole KV store
  (`restores` records it); anything that fails Consul's checks answers 500 like Consul's failed restore
  and leaves the store alone.
- Autopilot: GET/PUT `/v1/operator/autopilot/configuration` (`autopilot` dict, Consul's defaults).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import tarfile
from typing import Any

from tests.fakes.server import FakeServer, Reply, Request

AUTOPILOT_DEFAULTS: dict[str, Any] = {
    "CleanupDeadServers": True,
    "LastContactThreshold": "200ms",
    "MaxTrailingLogs": 250,
    "MinQuorum": 0,
    "ServerStabilizationTime": "10s",
    "RedundancyZoneTag": "",
    "DisableUpgradeMigration": False,
    "UpgradeVersionTag": "",
    "CreateIndex": 4,
    "ModifyIndex": 4,
}


def snapshot_of(kv: dict[str, bytes], index: int = 1) -> bytes:
    """The archive FakeConsul serves for a store holding `kv` at raft `index` (tests build old ones with it)."""
    state = json.dumps({key: base64.b64encode(value).decode() for key, value in sorted(kv.items())}).encode()
    meta = json.dumps({"Version": 1, "ID": f"2-{index}-fake", "Index": index, "Term": 2, "Size": len(state)})
    files = {"meta.json": meta.encode() + b"\n", "state.bin": state}
    files["SHA256SUMS"] = "".join(
        f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in files.items()
    ).encode()
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o600
            archive.addfile(info, io.BytesIO(data))
    return gzip.compress(tar.getvalue(), mtime=0)


def kv_of(snapshot: bytes) -> dict[str, bytes]:
    """The store a snapshot holds; ValueError, as Consul's restore fails, when the archive fails its checks."""
    try:
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(snapshot))) as archive:
            files = {m.name: (archive.extractfile(m) or io.BytesIO()).read() for m in archive.getmembers()}
    except (OSError, EOFError, tarfile.TarError) as error:
        raise ValueError(f"failed to read snapshot file: {error}") from error
    listed = dict(line.split("  ")[::-1] for line in files.get("SHA256SUMS", b"").decode().splitlines())
    for name in ("meta.json", "state.bin"):
        if name not in files or listed.get(name) != hashlib.sha256(files[name]).hexdigest():
            raise ValueError(f"failed checking integrity of snapshot: hash check failed for {name!r}")
    document = json.loads(files["state.bin"])
    return {key: base64.b64decode(value) for key, value in document.items()}


class FakeConsul(FakeServer):
    def __init__(
        self,
        *,
        leader: str | None = "10.30.0.10:8300",
        peers: list[str] | None = None,
        kv: dict[str, bytes] | None = None,
    ) -> None:
        super().__init__()
        self.leader = leader
        self.peers = peers if peers is not None else ([leader] if leader else [])
        self.kv: dict[str, bytes] = dict(kv or {})
        self.index = 10
        self._indexes: dict[str, tuple[int, int]] = {key: (self.index, self.index) for key in self.kv}
        self.autopilot: dict[str, Any] = dict(AUTOPILOT_DEFAULTS)
        self.sessions: dict[str, str] = {}  # key -> session holding it
        self.destroyed_sessions: list[str] = []
        self.snapshots_taken = 0
        self.restores: list[dict[str, bytes]] = []

    def set_leader(self, leader: str | None) -> None:
        with self.lock:
            self.leader = leader

    def hold(self, key: str, value: bytes, session: str) -> None:
        """`key` = `value`, held by `session` (what a `consul lock` holder or libkv's Lock leaves)."""
        with self.lock:
            self.kv[key] = value
            self.sessions[key] = session
            self._bump(key)

    def handle(self, request: Request) -> Reply:
        path = request.path
        if path.startswith("/v1/session/destroy/") and request.method == "PUT":
            session = path[len("/v1/session/destroy/") :]
            self.destroyed_sessions.append(session)
            for key in [k for k, held_by in self.sessions.items() if held_by == session]:
                del self.sessions[key]
                self._bump(key)
            return Reply.json(True)
        if path.startswith("/v1/kv/"):
            return self._kv(request, path[len("/v1/kv/") :])
        if path == "/v1/status/leader":
            return Reply.json(self.leader or "")
        if path == "/v1/status/peers":
            return Reply.json(self.peers)
        if path == "/v1/snapshot":
            return self._snapshot(request)
        if path == "/v1/operator/autopilot/configuration":
            return self._autopilot(request)
        return Reply.text(f"no handler for {request.method} {path}", 404)

    def _bump(self, key: str) -> None:
        self.index += 1
        created = self._indexes.get(key, (self.index, self.index))[0]
        self._indexes[key] = (created, self.index)

    def _entry(self, key: str) -> dict[str, Any]:
        created, modified = self._indexes.get(key, (self.index, self.index))
        value = self.kv[key]
        return {
            "Key": key,
            "Value": base64.b64encode(value).decode() if value else None,
            "Flags": 0,
            "CreateIndex": created,
            "ModifyIndex": modified,
            "LockIndex": 0,
            **({"Session": self.sessions[key]} if key in self.sessions else {}),
        }

    def _kv(self, request: Request, key: str) -> Reply:
        query = request.query
        if request.method == "GET":
            return self._kv_get(key, query)
        if request.method == "PUT":
            if "cas" in query:
                expected = int(query["cas"])
                current = self._indexes[key][1] if key in self.kv else 0
                if expected != current:
                    return Reply.json(False)
            self.kv[key] = request.body
            self._bump(key)
            return Reply.json(True)
        if request.method == "DELETE":
            doomed = [k for k in self.kv if k.startswith(key)] if "recurse" in query else [key]
            for k in doomed:
                self.kv.pop(k, None)
                self._indexes.pop(k, None)
                self.sessions.pop(k, None)
            self.index += 1
            return Reply.json(True)
        return Reply.text("method not allowed", 405)

    def _kv_get(self, key: str, query: dict[str, str]) -> Reply:
        headers = {"X-Consul-Index": str(self.index)}
        if "keys" in query:
            separator = query.get("separator", "")
            found: set[str] = set()
            for k in self.kv:
                if k.startswith(key):
                    cut = k.find(separator, len(key)) if separator else -1
                    found.add(k if cut < 0 else k[: cut + len(separator)])
            reply = Reply.json(sorted(found)) if found else Reply(404)
        elif "recurse" in query:
            entries = [self._entry(k) for k in sorted(self.kv) if k.startswith(key)]
            reply = Reply.json(entries) if entries else Reply(404)
        elif key not in self.kv:
            reply = Reply(404)
        elif "raw" in query:
            reply = Reply(200, self.kv[key])
        else:
            reply = Reply.json([self._entry(key)])
        reply.headers.update(headers)
        return reply

    def _snapshot(self, request: Request) -> Reply:
        if request.method == "GET":
            if not self.leader and "stale" not in request.query:
                return Reply.text("No cluster leader", 500)
            self.snapshots_taken += 1
            return Reply(200, snapshot_of(self.kv, self.index), {"X-Consul-Index": str(self.index)})
        if request.method == "PUT":
            try:
                restored = kv_of(request.body)
            except ValueError as error:
                return Reply.text(f"failed to read snapshot: {error}", 500)
            self.kv = restored
            self.index += 1
            self._indexes = {key: (self.index, self.index) for key in restored}
            self.restores.append(dict(restored))
            return Reply(200)
        return Reply.text("method not allowed", 405)

    def _autopilot(self, request: Request) -> Reply:
        if request.method == "PUT":
            self.autopilot.update(request.json() or {})
            self.index += 1
            self.autopilot["ModifyIndex"] = self.index
            return Reply.json(True)
        return Reply.json(self.autopilot)
