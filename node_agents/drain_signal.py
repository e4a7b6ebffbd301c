"""The one signal between the drain agent and the rebalancer: "a node is draining, do not move containers".

A draining node leaves Swarm discovery first, so the managers can no longer see it through the Swarm API;
the signal lives in Consul's KV store instead, which both sides reach. The drain agent (drain.py) writes
`<DRAINING_PREFIX><node ip>` when it starts, a JSON announcement whose `expires` is the Unix time after
which the entry is stale, and deletes the key when its lifecycle action is complete. A node killed
mid-drain leaves its key behind; `expires` keeps that from pausing rebalancing for ever.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

DRAINING_PREFIX = "swarm-cluster/draining/"


def active_drains(entries: Mapping[str, str], now: float) -> list[str]:
    """The nodes (key suffixes) whose drain is still in progress. An announcement that cannot be read counts
    as active, so a malformed entry pauses rather than races a drain."""
    active = []
    for key, value in entries.items():
        if not key.startswith(DRAINING_PREFIX):
            continue
        try:
            stale = float(json.loads(value)["expires"]) <= now
        except (ValueError, KeyError, TypeError):
            stale = False
        if not stale:
            active.append(key.removeprefix(DRAINING_PREFIX))
    return sorted(active)
