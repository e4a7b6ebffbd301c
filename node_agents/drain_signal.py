"""The one signal between the drain agent and the rebalancer: "a node is draining, do not move containers".

A node leaves Swarm discovery first when it drains, so the managers can no longer see it through the Swarm
API; the signal therefore lives in Consul's KV store, which both sides already reach. The drain agent writes
`<DRAINING_PREFIX><instance id>` with the Unix time after which the entry is stale as its value, and deletes
the key when its lifecycle action is complete. A node killed mid-drain leaves a key behind; its deadline keeps
that from pausing rebalancing for ever.
"""

from __future__ import annotations

from collections.abc import Mapping

DRAINING_PREFIX = "swarm-cluster/draining/"


def draining_value(deadline: float) -> str:
    return str(int(deadline))


def active_drains(entries: Mapping[str, str], now: float) -> list[str]:
    """Instance ids whose drain is still in progress: keys under the prefix whose deadline lies ahead. A value
    that is not a number counts as active, so a malformed entry pauses rather than races a drain."""
    active = []
    for key, value in entries.items():
        if not key.startswith(DRAINING_PREFIX):
            continue
        try:
            stale = float(value) <= now
        except ValueError:
            stale = False
        if not stale:
            active.append(key[len(DRAINING_PREFIX) :])
    return sorted(active)
