"""Topic names and the size each topic must accept."""

from __future__ import annotations

from dataclasses import dataclass

# Room for a message's Kafka headers and record framing above its body.
ENVELOPE_OVERHEAD_BYTES = 256 * 1024


@dataclass(frozen=True)
class Topics:
    """The platform's topics, all sharing one prefix."""

    messages: str
    run_requests: str
    run_events: str
    dead_letters: str

    @classmethod
    def with_prefix(cls, prefix: str) -> Topics:
        return cls(
            messages=f"{prefix}messages",
            run_requests=f"{prefix}run-requests",
            run_events=f"{prefix}run-events",
            dead_letters=f"{prefix}dead-letters",
        )

    def max_message_bytes(
        self, body_limit_bytes: int, state_limit_bytes: int
    ) -> dict[str, int]:
        """Per topic, the largest record it must take.

        A message is its body plus headers; a run request or event carries
        at most two states (input and final) and the run's logs.
        """
        run_record = (
            2 * state_limit_bytes + 2 * body_limit_bytes + ENVELOPE_OVERHEAD_BYTES
        )
        return {
            self.messages: body_limit_bytes + ENVELOPE_OVERHEAD_BYTES,
            self.run_requests: run_record,
            self.run_events: run_record,
            self.dead_letters: run_record,
        }
