"""The invariant checker itself: it must catch each kind of violation it exists for."""

from __future__ import annotations

from typing import Any

from tests.reliability.invariants import check_events


def _event(n: int, type_: str, status: str, progress: int, attempt: int) -> dict[str, Any]:
    return {"id": n, "type": type_, "status": status, "progress": progress, "attempt": attempt}


GOOD = [
    _event(1, "status", "queued", 0, 0),
    _event(2, "status", "processing", 10, 1),
    _event(3, "progress", "processing", 50, 1),
    _event(4, "status", "processing", 10, 2),  # the worker was lost: a new attempt
    _event(5, "progress", "processing", 90, 2),
    _event(6, "status", "failed", 90, 2),
    _event(7, "status", "queued", 0, 2),  # a retry starts the count again
    _event(8, "status", "processing", 10, 3),
    _event(9, "status", "completed", 100, 3),
]


def test_a_valid_history_passes() -> None:
    assert check_events("j", GOOD) == []


def test_a_forbidden_transition_is_caught() -> None:
    history = [*GOOD, _event(10, "status", "queued", 0, 3)]
    assert any("completed → queued" in p for p in check_events("j", history))


def test_processing_twice_in_one_attempt_is_caught() -> None:
    history = [*GOOD[:3], _event(4, "status", "processing", 60, 1)]
    problems = check_events("j", history)
    assert any("within attempt 1" in p for p in problems)
    assert any("started 2 times" in p for p in problems)


def test_progress_going_down_within_an_attempt_is_caught() -> None:
    history = [*GOOD[:3], _event(4, "progress", "processing", 40, 1)]
    assert any("progress went down 50 → 40" in p for p in check_events("j", history))


def test_two_endings_for_one_run_are_caught() -> None:
    history = [
        *GOOD[:3],
        _event(4, "status", "failed", 50, 1),
        _event(5, "status", "failed", 50, 1),
    ]
    problems = check_events("j", history)
    assert any("2 endings for 1 run" in p for p in problems)
