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
AGENT = 'consul-snapshot'
MARKER_KEY = 'swarm-cluster/consul-snapshot/initialised'
SERVER_PORT = 8300
CLAIM_TIMEOUT = 900.0
POLL = 5.0
RETRY = 60.0
SUFFIX = '.snap'
_MEMBERS = ('meta.json', 'state.bin', 'SHA256SUMS')

class CorruptSnapshot(Exception):
    pass

def verify(archive):
    try:
        members = _members(gzip.decompress(archive))
    except (OSError, EOFError, tarfile.TarError) as error:
        raise CorruptSnapshot(f"not a gzip'd tar archive: {error}") from None
    if sorted(members) != sorted(_MEMBERS):
        raise CorruptSnapshot(f'holds {sorted(members)}; a snapshot holds exactly {list(_MEMBERS)}')
    sums: dict[str, str] = {}
    for line in members['SHA256SUMS'].decode(errors='replace').splitlines():
        digest, _, name = line.partition('  ')
        sums[name] = digest
    for name in ('meta.json', 'state.bin'):
        if sums.get(name) != hashlib.sha256(members[name]).hexdigest():
            raise CorruptSnapshot(f'{name} does not match its SHA-256 in SHA256SUMS')
    try:
        return int(json.loads(members['meta.json'])['Index'])
    except (ValueError, KeyError, TypeError) as error:
        raise CorruptSnapshot(f'meta.json has no raft index: {error!r}') from None

def _members(tar):
    found: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(tar), mode='r:') as archive:
        for member in archive:
            data = archive.extractfile(member)
            found[member.name] = data.read() if data is not None else b''
    return found

def interval_key(prefix, boundary):
    return prefix + time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(boundary)) + SUFFIX

@dataclass(frozen=True)
class Settings:
    bucket: str
    prefix: str
    interval: float
    kms_key_id: str | None
    server_config: Path | None

class SnapshotAgent:

    def __init__(self, settings, clock):
        self.settings = settings
        self.clock = clock
        self.consul = Consul()
        self.s3 = S3Client(Aws(agent=AGENT, clock=clock))
        imds = Imds()
        self.node = imds.instance_id()
        self.address = f"{imds.require('local-ipv4')}:{SERVER_PORT}"
        self.stopping = threading.Event()

    def where(self, key):
        return f's3://{self.settings.bucket}/{key}'

    def save(self, boundary):
        leader = self.consul.leader()
        if leader != self.address:
            log(AGENT, f"not the leader ({leader or 'no leader'}); {self.address} saves nothing this interval")
            return False
        if not self._ready():
            log(AGENT, f'ERROR: the cluster is not initialised (no ready {MARKER_KEY}); nothing saved')
            return False
        archive = self.consul.snapshot_save()
        try:
            index = verify(archive)
        except CorruptSnapshot as error:
            log(AGENT, f'ERROR: Consul returned an unusable snapshot ({error}); nothing saved this interval')
            return False
        key = interval_key(self.settings.prefix, boundary)
        self.s3.put_object(self.settings.bucket, key, archive, kms_key_id=self.settings.kms_key_id)
        log(AGENT, f'saved {self.where(key)} (raft index {index}, {len(archive)} bytes)')
        self.ensure_autopilot()
        return True

    def _marker(self):
        entry = self.consul.kv_get(MARKER_KEY)
        return (entry, json.loads(entry.value) if entry is not None else {})

    def _ready(self):
        return self._marker()[1].get('state') == 'ready'

    def ensure_autopilot(self):
        if self.settings.server_config is None:
            return
        wanted = {''.join((word.capitalize() for word in name.split('_'))): value for name, value in json.loads(self.settings.server_config.read_text())['autopilot'].items()}
        current = self.consul.autopilot_configuration()
        if any((current.get(name) != value for name, value in wanted.items())):
            self.consul.set_autopilot_configuration({**current, **wanted})
            log(AGENT, f'autopilot configuration set to {wanted}')

    def wait_for_leader(self):
        while not self.stopping.is_set():
            try:
                leader = self.consul.leader()
            except HttpError as error:
                leader, why = (None, f'the local Consul agent does not answer ({error})')
            else:
                why = 'the cluster has no leader yet'
            if leader:
                return
            log(AGENT, f'waiting: {why}')
            self.sleep(POLL)

    def initialise(self):
        self.wait_for_leader()
        while not self.stopping.is_set():
            entry, marker = self._marker()
            if marker.get('state') == 'ready':
                log(AGENT, f'cluster initialised ({_describe(marker)}); nothing to restore')
                return
            if entry is not None and marker.get('node') != self.node and (not self._stale(marker)):
                log(AGENT, f"waiting: {marker.get('node')} is restoring this cluster")
                self.sleep(POLL)
                continue
            claim = {'state': 'restoring', 'node': self.node, 'since': self.clock.now()}
            if self.consul.kv_put(MARKER_KEY, _json(claim), cas=entry.modify_index if entry else 0):
                self._mark_ready(self.restore_newest())
                return

    def _stale(self, marker):
        return self.clock.now() - float(marker.get('since', 0)) > CLAIM_TIMEOUT

    def _mark_ready(self, snapshot):
        marker = {'state': 'ready', 'node': self.node, 'since': self.clock.now(), 'snapshot': snapshot}
        self.consul.kv_put(MARKER_KEY, _json(marker))
        log(AGENT, f'cluster initialised ({_describe(marker)})')

    def restore_newest(self):
        keys = sorted((o.key for o in self.s3.list_objects_v2(self.settings.bucket, self.settings.prefix)), reverse=True)
        keys = [key for key in keys if key.endswith(SUFFIX)]
        if not keys:
            log(AGENT, f'no snapshot under {self.where(self.settings.prefix)}: a new cluster starts empty')
            return None
        for n, key in enumerate(keys):
            if self._restore(key, fallback=n + 1 < len(keys)):
                return key
        log(AGENT, f'ERROR: none of the {len(keys)} snapshots could be restored; THE CLUSTER STARTS EMPTY')
        return None

    def _restore(self, key, *, fallback):
        then = 'falling back to the previous snapshot' if fallback else 'no older snapshot is left'
        archive = self.s3.get_object(self.settings.bucket, key)
        try:
            index = verify(archive if archive is not None else b'')
        except CorruptSnapshot as error:
            log(AGENT, f'ERROR: snapshot {self.where(key)} is CORRUPT ({error}); {then}')
            return False
        try:
            self.consul.snapshot_restore(archive or b'')
        except HttpError as error:
            log(AGENT, f'ERROR: Consul refused snapshot {self.where(key)} ({error}); {then}')
            return False
        log(AGENT, f'restored {self.where(key)} (raft index {index})')
        return True

    def sleep(self, seconds):
        self.stopping.wait(max(0.0, seconds) * self.clock.scale)

    def run(self):
        interval = self.settings.interval
        self._initialise_until_done()
        while not self.stopping.is_set():
            now = self.clock.now()
            boundary = now - now % interval + interval
            if not self.stopping.wait(boundary - now):
                self._tick(boundary)
        log(AGENT, 'stopping: one last snapshot if this server leads')
        now = self.clock.now()
        self._tick(now - now % interval)

    def _initialise_until_done(self):
        while not self.stopping.is_set():
            try:
                self.initialise()
                return
            except Exception as error:
                log(AGENT, f'ERROR: initialising the cluster failed ({error}); retrying in {RETRY:.0f}s')
                self.sleep(RETRY)

    def _tick(self, boundary):
        try:
            self.save(boundary)
        except Exception as error:
            log(AGENT, f'ERROR: snapshot of {self.where(interval_key(self.settings.prefix, boundary))} failed: {error}')

def _json(document):
    return json.dumps(document, sort_keys=True).encode()

def _describe(marker):
    source = marker.get('snapshot') or 'no snapshot: it started empty'
    return f"by {marker.get('node')}, from {source}"

def _arguments(argv):
    parser = argparse.ArgumentParser(prog=f"python -m node_agents.{AGENT.replace('-', '_')}")
    parser.add_argument('command', choices=('run', 'restore', 'save'))
    parser.add_argument('--bucket', required=True)
    parser.add_argument('--prefix', required=True)
    parser.add_argument('--interval', type=float, required=True, help='seconds between snapshots')
    parser.add_argument('--kms-key-id')
    parser.add_argument('--server-config', type=Path, help='the Consul agent config with the autopilot block')
    args = parser.parse_args(argv)
    if args.interval <= 0:
        parser.error('--interval must be positive')
    return (args.command, Settings(args.bucket, args.prefix, args.interval, args.kms_key_id, args.server_config))

def main(argv=None):
    command, settings = _arguments(sys.argv[1:] if argv is None else argv)
    clock = Clock.from_env()
    try:
        agent = SnapshotAgent(settings, clock)
        signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=agent.stopping.set).start())
        if command == 'run':
            agent.run()
        elif command == 'restore':
            agent.initialise()
        else:
            now = clock.now()
            return 0 if agent.save(now - now % settings.interval) else 3
    except Exception as error:
        log(AGENT, f'ERROR: {command} failed: {error}')
        return 1
    return 0
if __name__ == '__main__':
    sys.exit(main())
