"""node_agents.runtime: log lines, the scaled clock, bounded retries, the resume-after-restart state file."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from node_agents.runtime import Clock, StateFile, backoff_delays, log, retry


def test_log_is_one_prefixed_line(capsys: pytest.CaptureFixture[str]) -> None:
    log("drain", "left discovery")
    assert capsys.readouterr().out == "drain: left discovery\n"


def test_clock_scale_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_TIME_SCALE", "0.001")
    clock = Clock.from_env()
    started = time.monotonic()
    clock.sleep(20)  # 20 agent seconds
    assert 0.015 < time.monotonic() - started < 2 and clock.monotonic() >= 20
    for bad in ("0", "2", "-1"):
        monkeypatch.setenv("AGENT_TIME_SCALE", bad)
        with pytest.raises(ValueError, match="AGENT_TIME_SCALE"):
            Clock.from_env()


def test_backoff_is_bounded_full_jitter() -> None:
    delays = backoff_delays(8, base=0.5, cap=20)
    assert len(delays) == 7
    assert all(0 <= d <= min(20, 0.5 * 2**n) for n, d in enumerate(delays))


def test_retry_stops_at_the_attempt_limit_and_on_refused_errors() -> None:
    calls: list[int] = []
    retried: list[float] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("down")
        return "up"

    clock = Clock(scale=0.0001)
    assert retry(flaky, attempts=5, base=1, cap=2, clock=clock, on_retry=lambda e, d: retried.append(d)) == "up"
    assert len(calls) == 3 and len(retried) == 2
    calls.clear()

    def down() -> None:
        calls.append(1)
        raise ConnectionError("still down")

    with pytest.raises(ConnectionError):
        retry(down, attempts=3, base=1, cap=1, clock=clock)
    assert len(calls) == 3
    with pytest.raises(KeyError):
        retry(lambda: {}["x"], attempts=5, base=1, cap=1, clock=clock, retryable=lambda e: not isinstance(e, KeyError))


def test_state_file_survives_restarts_and_never_tears(tmp_path: Path) -> None:
    state = StateFile(tmp_path / "drain" / "state.json")
    assert state.load() == {}
    state.update(phase="left-discovery", at=1.5)
    assert StateFile(tmp_path / "drain" / "state.json").update(phase="stopped") == {"phase": "stopped", "at": 1.5}
    assert json.loads((tmp_path / "drain" / "state.json").read_text()) == {"at": 1.5, "phase": "stopped"}
    assert [p.name for p in (tmp_path / "drain").iterdir()] == ["state.json"]
    (tmp_path / "drain" / "state.json").write_text("[1]")
    with pytest.raises(ValueError, match="JSON object"):
        state.load()
