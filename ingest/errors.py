"""The event store's errors, named after what drives policy at the boundary
(in the manner of PEP 249): callers branch on these, never on asyncpg's. The store
translates every database error into one of them (the original is ``__cause__``)."""

from __future__ import annotations


class StoreError(Exception):
    """Base of everything the event store raises."""


class StoreUnavailable(StoreError):
    """PostgreSQL cannot be reached or dropped the connection: retryable (HTTP 503)."""


class StoreRejected(StoreError):
    """PostgreSQL answered and refused the operation (a constraint, a permission, a value
    it cannot take): nothing was written; trying the same thing again fails the same way
    until an operator fixes the cause."""


class WrongExpectedVersion(StoreError):
    """An append named a stream version that is no longer the stream's (HTTP 409)."""

    def __init__(self, stream: str, expected: int, actual: int) -> None:
        super().__init__(f"stream {stream!r} is at version {actual}, not {expected}")
        self.stream = stream
        self.expected = expected
        self.actual = actual
