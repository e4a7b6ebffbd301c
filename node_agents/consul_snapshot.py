"""Consul snapshots to S3 on every interval, and the restore of the newest valid one into a cluster that
starts empty. One process per Consul server, beside it (user Docker, host network: it needs the local
agent on 127.0.0.1:8500 and the instance role from IMDS):

    python -m node_agents.consul_snapshot run --bucket B --prefix consul-snapshots/ --interval 300 \\
        [--kms-key-id ARN] [--server-config /etc/consul.d/server.json]

`restore` only initialises the cluster (below) and exits; `save` takes one snapshot now if this server
leads. Both exist for operators and tests; `run` does the first, then the second on every interval.

Only the leader's snapshot is kept
    Every server wakes at the same wall-clock boundaries (multiples of the interval since the epoch) and
    saves only if `/v1/status/leader` names its own raft address (IMDS local-ipv4, port 8300). Objects
    are named by the boundary (`<prefix><UTC yyyymmddThhmmssZ>.snap`), so even if leadership moves
    between two servers' checks, both write the same key: one snapshot per interval, never two.
    A snapshot is read from the leader whoever asks (Consul forwards the request), and it is verified
    (gzip'd tar of meta.json, state.bin, SHA256SUMS, as `consul snapshot inspect` checks it) before it
    is uploaded. On SIGTERM the leader saves once more, so a planned replacement loses nothing.

Restore, only into an empty cluster
    "Empty" cannot be read from Consul itself: a server that joins a running cluster also starts with no
    data, and with bootstrap_expect > 1 it sees a leader as soon as it has joined. So the agent keeps a
    marker, the KV key MARKER_KEY, written when a cluster has been initialised (restored, or found
    nothing to restore). It lives in the replicated state, so every server of a running cluster reads
    it through the leader, and it is in every snapshot, since snapshots start only once it exists. A
    replacement server joining a running cluster therefore finds it and restores nothing. A cluster
    whose servers all started empty (staging's single server replaced, or every server lost) has a
    leader and no marker: the agent that creates the marker first (check-and-set, cas=0) restores the
    newest snapshot that verifies and that Consul accepts, falling back to older ones and saying so
    loudly; the others wait until it is done. A claim left by an agent that died mid-restore is taken
    over after CLAIM_TIMEOUT. Deleting the marker from a running cluster would make the next server
    that starts restore over live data: it is documented as the one key not to touch.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import signal
import sys
import tarfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from node_agents.aws import Aws
from node_agents.consul import Consul, KvEntry
from node_agents.http import HttpError
from node_agents.imds import Imds
from node_agents.runtime import Clock, log
from node_agents.s3 import S3Client

AGENT = "consul-snapshot"
MARKER_KEY = "swarm-cluster/consul-snapshot/initialised"
SERVER_PORT = 8300  # Consul's server RPC port, which /v1/status/leader reports
CLAIM_TIMEOUT = 900.0  # a restore takes seconds; a claim this old belongs to an agent that died
POLL = 5.0
RETRY = 60.0
SIGNAL_SLICE = 1.0  # real seconds: the longest SIGTERM may wait to be noticed (see SnapshotAgent._wait)
SUFFIX = ".snap"
_MEMBERS = ("meta.json", "state.bin", "SHA256SUMS")


class CorruptSnapshot(Exception):
    """The bytes are not a snapshot Consul would accept."""


def verify(archive: bytes) -> int:
    """The snapshot's raft index, after the checks `consul snapshot inspect` makes; CorruptSnapshot if not."""
    try:
        members = _members(gzip.decompress(archive))
    except (OSError, EOFError, tarfile.TarError) as error:
        raise CorruptSnapshot(f"not a gzip'd tar archive: {error}") from None
    if sorted(members) != sorted(_MEMBERS):
        raise CorruptSnapshot(f"holds {sorted(members)}; a snapshot holds exactly {list(_MEMBERS)}")
    sums: dict[str, str] = {}
    for line in members["SHA256SUMS"].decode(errors="replace").splitlines():
        digest, _, name = line.partition("  ")
        sums[name] = digest
    for name in ("meta.json", "state.bin"):
        if sums.get(name) != hashlib.sha256(members[name]).hexdigest():
            raise CorruptSnapshot(f"{name} does not match its SHA-256 in SHA256SUMS")
    try:
        return int(json.loads(members["meta.json"])["Index"])
    except (ValueError, KeyError, TypeError) as error:
        raise CorruptSnapshot(f"meta.json has no raft index: {error!r}") from None


def _members(tar: bytes) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(tar), mode="r:") as archive:
        for member in archive:
            data = archive.extractfile(member)
            found[member.name] = data.read() if data is not None else b""
    return found


def interval_key(prefix: str, boundary: float) -> str:
    return prefix + time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(boundary)) + SUFFIX


@dataclass(frozen=True)
class Settings:
    bucket: str
    prefix: str
    interval: float
    kms_key_id: str | None
    server_config: Path | None


class SnapshotAgent:
    def __init__(self, settings: Settings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        self.consul = Consul()
        self.s3 = S3Client(Aws(agent=AGENT, clock=clock))
        imds = Imds()
        self.node = imds.instance_id()
        self.address = f"{imds.require('local-ipv4')}:{SERVER_PORT}"
        self.stopping = threading.Event()

    def where(self, key: str) -> str:
        return f"s3://{self.settings.bucket}/{key}"

    def save(self, boundary: float) -> bool:
        """The snapshot of the interval starting at `boundary`, if this server leads; True if saved."""
        leader = self.consul.leader()
        if leader != self.address:
            log(AGENT, f"not the leader ({leader or 'no leader'}); {self.address} saves nothing this interval")
            return False
        if not self._ready():
            # Its snapshot would become the newest, and the next restore would bring back an empty cluster.
            log(AGENT, f"ERROR: the cluster is not initialised (no ready {MARKER_KEY}); nothing saved")
            return False
        archive = self.consul.snapshot_save()
        try:
            index = verify(archive)
        except CorruptSnapshot as error:
            log(AGENT, f"ERROR: Consul returned an unusable snapshot ({error}); nothing saved this interval")
            return False
        key = interval_key(self.settings.prefix, boundary)
        self.s3.put_object(self.settings.bucket, key, archive, kms_key_id=self.settings.kms_key_id)
        log(AGENT, f"saved {self.where(key)} (raft index {index}, {len(archive)} bytes)")
        self.ensure_autopilot()
        return True

    def _marker(self) -> tuple[KvEntry | None, dict[str, Any]]:
        entry = self.consul.kv_get(MARKER_KEY)
        return entry, (json.loads(entry.value) if entry is not None else {})

    def _ready(self) -> bool:
        return self._marker()[1].get("state") == "ready"

    def ensure_autopilot(self) -> None:
        """Autopilot reads the agent config only when a cluster bootstraps; older clusters get it here."""
        if self.settings.server_config is None:
            return
        wanted = {
            "".join(word.capitalize() for word in name.split("_")): value
            for name, value in json.loads(self.settings.server_config.read_text())["autopilot"].items()
        }
        current = self.consul.autopilot_configuration()
        if any(current.get(name) != value for name, value in wanted.items()):
            self.consul.set_autopilot_configuration({**current, **wanted})
            log(AGENT, f"autopilot configuration set to {wanted}")

    def wait_for_leader(self) -> None:
        while not self.stopping.is_set():
            try:
                leader = self.consul.leader()
            except HttpError as error:
                leader, why = None, f"the local Consul agent does not answer ({error})"
            else:
                why = "the cluster has no leader yet"
            if leader:
                return
            log(AGENT, f"waiting: {why}")
            self.sleep(POLL)

    def initialise(self) -> None:
        """Restore the newest valid snapshot if this cluster started empty; return once it is initialised."""
        self.wait_for_leader()
        while not self.stopping.is_set():
            entry, marker = self._marker()
            if marker.get("state") == "ready":
                log(AGENT, f"cluster initialised ({_describe(marker)}); nothing to restore")
                return
            if entry is not None and marker.get("node") != self.node and not self._stale(marker):
                log(AGENT, f"waiting: {marker.get('node')} is restoring this cluster")
                self.sleep(POLL)
                continue
            claim = {"state": "restoring", "node": self.node, "since": self.clock.now()}
            if self.consul.kv_put(MARKER_KEY, _json(claim), cas=entry.modify_index if entry else 0):
                self._mark_ready(self.restore_newest())
                return

    def _stale(self, marker: dict[str, Any]) -> bool:
        return self.clock.now() - float(marker.get("since", 0)) > CLAIM_TIMEOUT

    def _mark_ready(self, snapshot: str | None) -> None:
        """Written after the restore, which replaced the whole KV store (and any marker in it)."""
        marker = {"state": "ready", "node": self.node, "since": self.clock.now(), "snapshot": snapshot}
        self.consul.kv_put(MARKER_KEY, _json(marker))
        log(AGENT, f"cluster initialised ({_describe(marker)})")

    def restore_newest(self) -> str | None:
        """The key of the snapshot restored; None when none was usable (the cluster stays empty)."""
        keys = sorted(
            (o.key for o in self.s3.list_objects_v2(self.settings.bucket, self.settings.prefix)),
            reverse=True,
        )
        keys = [key for key in keys if key.endswith(SUFFIX)]
        if not keys:
            log(AGENT, f"no snapshot under {self.where(self.settings.prefix)}: a new cluster starts empty")
            return None
        for n, key in enumerate(keys):
            if self._restore(key, fallback=n + 1 < len(keys)):
                return key
        log(AGENT, f"ERROR: none of the {len(keys)} snapshots could be restored; THE CLUSTER STARTS EMPTY")
        return None

    def _restore(self, key: str, *, fallback: bool) -> bool:
        then = "falling back to the previous snapshot" if fallback else "no older snapshot is left"
        archive = self.s3.get_object(self.settings.bucket, key)
        try:
            index = verify(archive if archive is not None else b"")
        except CorruptSnapshot as error:
            log(AGENT, f"ERROR: snapshot {self.where(key)} is CORRUPT ({error}); {then}")
            return False
        try:
            self.consul.snapshot_restore(archive or b"")
        except HttpError as error:
            log(AGENT, f"ERROR: Consul refused snapshot {self.where(key)} ({error}); {then}")
            return False
        log(AGENT, f"restored {self.where(key)} (raft index {index})")
        return True

    def sleep(self, seconds: float) -> None:
        """A wait (scaled in tests) that SIGTERM cuts short."""
        self._wait(seconds * self.clock.scale)

    def _wait(self, seconds: float) -> bool:
        """`seconds` of real time, or less: True once SIGTERM has asked to stop. In slices, because a signal
        that lands just as a wait blocks is only handled when that wait returns (CPython looks for signals
        before blocking, not during that instant): one long wait would hold off SIGTERM past `docker stop`'s
        grace period, and the last snapshot with it."""
        deadline = time.monotonic() + seconds
        while not self.stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.stopping.wait(min(left, SIGNAL_SLICE))
        return True

    def run(self) -> None:
        interval = self.settings.interval
        self._initialise_until_done()
        while not self.stopping.is_set():
            now = self.clock.now()
            boundary = now - now % interval + interval
            # Wall-clock time, never scaled: every server must wake at the same boundaries.
            if not self._wait(boundary - now):
                self._tick(boundary)
        log(AGENT, "stopping: one last snapshot if this server leads")
        now = self.clock.now()
        self._tick(now - now % interval)

    def _initialise_until_done(self) -> None:
        """A failure (S3 or Consul unreachable) is retried here, not by restarting the container: node-health
        would take a restarting service for a broken node."""
        while not self.stopping.is_set():
            try:
                self.initialise()
                return
            except Exception as error:
                log(AGENT, f"ERROR: initialising the cluster failed ({error}); retrying in {RETRY:.0f}s")
                self.sleep(RETRY)

    def _tick(self, boundary: float) -> None:
        try:
            self.save(boundary)
        except Exception as error:  # the next interval tries again; the loop must outlive any one failure
            log(AGENT, f"ERROR: snapshot of {self.where(interval_key(self.settings.prefix, boundary))} failed: {error}")


def _json(document: dict[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True).encode()


def _describe(marker: dict[str, Any]) -> str:
    source = marker.get("snapshot") or "no snapshot: it started empty"
    return f"by {marker.get('node')}, from {source}"


def _arguments(argv: Sequence[str]) -> tuple[str, Settings]:
    parser = argparse.ArgumentParser(prog=f"python -m node_agents.{AGENT.replace('-', '_')}")
    parser.add_argument("command", choices=("run", "restore", "save"))
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--interval", type=float, required=True, help="seconds between snapshots")
    parser.add_argument("--kms-key-id")
    parser.add_argument("--server-config", type=Path, help="the Consul agent config with the autopilot block")
    args = parser.parse_args(argv)
    if args.interval <= 0:
        parser.error("--interval must be positive")
    return args.command, Settings(args.bucket, args.prefix, args.interval, args.kms_key_id, args.server_config)


def main(argv: Sequence[str] | None = None) -> int:
    command, settings = _arguments(sys.argv[1:] if argv is None else argv)
    clock = Clock.from_env()
    try:
        agent = SnapshotAgent(settings, clock)
        # Set from another thread: Event.set() takes a lock the interrupted main thread may be holding.
        signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=agent.stopping.set).start())
        if command == "run":
            agent.run()
        elif command == "restore":
            agent.initialise()
        else:
            now = clock.now()
            return 0 if agent.save(now - now % settings.interval) else 3
    except Exception as error:  # the container restarts the agent, which resumes its own claim
        log(AGENT, f"ERROR: {command} failed: {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
