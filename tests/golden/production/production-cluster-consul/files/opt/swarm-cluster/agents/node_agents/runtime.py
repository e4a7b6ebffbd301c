from __future__ import annotations
import json
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
T = TypeVar('T')
TIME_SCALE_ENV = 'AGENT_TIME_SCALE'

def log(agent, message):
    print(f'{agent}: {message}', file=sys.stdout, flush=True)

@dataclass
class Clock:
    scale: float = 1.0
    _start: float = field(default_factory=time.monotonic)

    @classmethod
    def from_env(cls):
        raw = os.environ.get(TIME_SCALE_ENV, '1')
        scale = float(raw)
        if not 0 < scale <= 1:
            raise ValueError(f'{TIME_SCALE_ENV}={raw!r}: must be a number in (0, 1]')
        return cls(scale=scale)

    def monotonic(self):
        return (time.monotonic() - self._start) / self.scale

    def now(self):
        return time.time()

    def sleep(self, seconds):
        time.sleep(max(0.0, seconds) * self.scale)

def backoff_delays(attempts, base, cap):
    return [random.uniform(0, min(cap, base * 2 ** n)) for n in range(attempts - 1)]

def retry(call, *, attempts, base, cap, clock, retryable=lambda _: True, on_retry=None):
    delays = backoff_delays(attempts, base, cap)
    for delay in delays:
        try:
            return call()
        except Exception as error:
            if not retryable(error):
                raise
            if on_retry is not None:
                on_retry(error, delay)
            clock.sleep(delay)
    return call()

class StateFile:

    def __init__(self, path):
        self.path = Path(path)

    def load(self):
        try:
            data = json.loads(self.path.read_text(encoding='utf-8'))
        except FileNotFoundError:
            return {}
        if not isinstance(data, dict):
            raise ValueError(f'{self.path}: expected a JSON object')
        return data

    def save(self, state):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f'.{self.path.name}.tmp')
        with tmp.open('w', encoding='utf-8') as out:
            json.dump(state, out, sort_keys=True)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.path)

    def update(self, **changes):
        state = {**self.load(), **changes}
        self.save(state)
        return state
