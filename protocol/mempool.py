"""The mempool: accepted events waiting for a block, bounded and without duplicates.

Events leave in the order they arrived (a derivation submitted after its parent's
registration lands after it). The pool holds at most `MEMPOOL_EVENTS_MAX` events; past that a
submit is refused with RESOURCE_EXHAUSTED rather than growing memory without bound.
"""

from __future__ import annotations

from collections import OrderedDict

from provledger.protocol.events import DecodedEvent
from provledger.protocol.limits import MEMPOOL_EVENTS_MAX


class MempoolFull(Exception):
    pass


class Mempool:
    def __init__(self, events_max: int = MEMPOOL_EVENTS_MAX) -> None:
        self._events: OrderedDict[bytes, DecodedEvent] = OrderedDict()
        self._events_max = events_max
        self._bytes = 0  # of the signed events held (for the metrics)

    def __len__(self) -> int:
        return len(self._events)

    def __contains__(self, event_id: bytes) -> bool:
        return event_id in self._events

    @property
    def bytes_held(self) -> int:
        """The bytes of the signed events held."""
        return self._bytes

    def get(self, event_id: bytes) -> DecodedEvent | None:
        return self._events.get(event_id)

    def add(self, decoded: DecodedEvent) -> bool:
        """Queue an event; False if it is already queued."""
        if decoded.event_id in self._events:
            return False
        if len(self._events) >= self._events_max:
            raise MempoolFull(f"the mempool holds its limit of {self._events_max} events")
        self._events[decoded.event_id] = decoded
        self._bytes += decoded.signed.ByteSize()
        return True

    def peek(self, count_max: int) -> list[DecodedEvent]:
        """The oldest events, up to `count_max`, left in the pool."""
        batch: list[DecodedEvent] = []
        for decoded in self._events.values():
            if len(batch) == count_max:
                break
            batch.append(decoded)
        return batch

    def remove(self, event_ids: list[bytes]) -> None:
        for event_id in event_ids:
            removed = self._events.pop(event_id, None)
            if removed is not None:
                self._bytes -= removed.signed.ByteSize()
