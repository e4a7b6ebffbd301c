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

def log(agent: str, message: str) -> None:
    print(f'{agent}: {message}', file=sys.stdout, flush=True)

@dataclass
class Clock:
    scale: float = 1.0
    _start: float = field(default_factory=time.monotonic)

    @classmethod
    def from_env(cls) -> Clock:
        raw = os.environ.get(TIME_SCALE_ENV, '1')
        scale = float(raw)
        if not 0 < scale <= 1:
            raise ValueError(f'{TIME_SCALE_ENV}={raw!r}: must be a number in (0, 1]')
        return cls(scale=scale)

    def monotonic(self) -> float:
        return (time.monotonic() - self._start) / self.scale

    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds) * self.scale)

def backoff_delays(attempts: int, base: float, cap: float) -> list[float]:
    return [random.uniform(0, min(cap, base * 2 ** n)) for n in range(attempts - 1)]

def retry(call: Callable[[], T], *, attempts: int, base: float, cap: float, clock: Clock, retryable: Callable[[Exception], bool]=lambda _: True, on_retry: Callable[[Exception, float], None] | None=None) -> T:
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

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding='utf-8'))
        except FileNotFoundError:
            return {}
        if not isinstance(data, dict):
            raise ValueError(f'{self.path}: expected a JSON object')
        return data

    def save(self, state: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f'.{self.path.name}.tmp')
        with tmp.open('w', encoding='utf-8') as out:
            json.dump(state, out, sort_keys=True)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.path)

    def update(self, **changes: Any) -> dict[str, Any]:
        state = {**self.load(), **changes}
        self.save(state)
        return state
