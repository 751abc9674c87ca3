"""A runner commits an offset only when every run before it has finished."""

from __future__ import annotations

from services.runner.offsets import OffsetTracker

P = ("openfn.run-requests", 0)
Q = ("openfn.run-requests", 1)


def test_nothing_is_committable_before_a_run_finishes() -> None:
    tracker = OffsetTracker()
    tracker.received(P, 5)
    assert tracker.committable() == {}


def test_a_finished_run_moves_the_position_past_it() -> None:
    tracker = OffsetTracker()
    tracker.received(P, 5)
    tracker.finished(P, 5)
    assert tracker.committable() == {P: 6}
    assert tracker.committable() == {}


def test_a_later_run_finishing_first_waits_for_the_earlier_one() -> None:
    tracker = OffsetTracker()
    for offset in (5, 6, 7):
        tracker.received(P, offset)
    tracker.finished(P, 7)
    tracker.finished(P, 6)
    assert tracker.committable() == {P: 5}
    tracker.finished(P, 5)
    assert tracker.committable() == {P: 8}


def test_partitions_move_independently() -> None:
    tracker = OffsetTracker()
    tracker.received(P, 1)
    tracker.received(Q, 10)
    tracker.finished(Q, 10)
    assert tracker.committable() == {Q: 11}
    assert tracker.in_flight == 1


def test_a_revoked_partition_is_forgotten_and_late_finishes_ignored() -> None:
    tracker = OffsetTracker()
    tracker.received(P, 1)
    tracker.forget([P])
    tracker.finished(P, 1)
    assert tracker.committable() == {}
    assert tracker.in_flight == 0
