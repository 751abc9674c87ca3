"""Which offsets a runner may commit while runs finish out of order.

Runs of one partition start in offset order but finish in any order. The
committed position of a partition is its oldest run still going, or, when none
is going, just past the newest one that finished.
"""

from __future__ import annotations

from collections.abc import Iterable

TopicPartition = tuple[str, int]


class OffsetTracker:
    """Offsets received and finished, per partition."""

    def __init__(self) -> None:
        self._pending: dict[TopicPartition, set[int]] = {}
        self._newest_done: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}

    def received(self, partition: TopicPartition, offset: int) -> None:
        self._pending.setdefault(partition, set()).add(offset)

    def finished(self, partition: TopicPartition, offset: int) -> None:
        """Mark an offset done; ignored for partitions no longer owned."""
        pending = self._pending.get(partition)
        if pending is None or offset not in pending:
            return
        pending.discard(offset)
        self._newest_done[partition] = max(self._newest_done.get(partition, -1), offset)

    def committable(self) -> dict[TopicPartition, int]:
        """Per partition, the position to commit, where it moved forward."""
        moved: dict[TopicPartition, int] = {}
        for partition, newest in self._newest_done.items():
            pending = self._pending.get(partition)
            position = min(pending) if pending else newest + 1
            if position > self._committed.get(partition, -1):
                self._committed[partition] = position
                moved[partition] = position
        return moved

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        """Stop tracking partitions that were revoked."""
        for partition in partitions:
            self._pending.pop(partition, None)
            self._newest_done.pop(partition, None)
            self._committed.pop(partition, None)

    @property
    def in_flight(self) -> int:
        return sum(len(offsets) for offsets in self._pending.values())
