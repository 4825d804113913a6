"""The write batcher: buffers applied score events and writes them to the history in bulk.

Owns buffering, flush timing, retries and draining. May import `store` (events,
the `HistoryWrites` protocol, its errors) and the standard library; nothing above it.
"""

from batcher.batcher import FlushObserver, Reservation, WriteBatcher, WriteRefused

__all__ = ["FlushObserver", "Reservation", "WriteBatcher", "WriteRefused"]
