"""Group call: concurrent callers share one request instead of sending one each.

`call(item)` waits until a batch carrying `item` has been sent and returns
that item's answer (`call_many(items)`: for several items at once). If fewer
than `lanes` batches are in flight, the caller leads the next one with
everything waiting (up to `limit`); callers arriving meanwhile ride a batch
after. With one lane, a busy writer sees a few large requests, not many
small ones (the order servers' group commit at the
catalog primary); a front-end uses one lane per order server, so both work
at once. If sending fails, every item of that batch gets the error.

`linger`: a leader that finds another batch already in flight (so the caller
is under load) waits up to that long for riders before it sends. Callers of a
batch that just came back return within a few milliseconds; without the wait
the first of them leads a batch of one and the rest ride the next, so a
closed loop of callers settles into many small batches. It stops waiting once
as many wait as the last batch carried: those are the callers coming back, and
the rest of the wait only delayed them (buys/s x1.10, ab.py). A lone caller
never waits: with nothing in flight it sends at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any


class _Slot:
    __slots__ = ("answer", "done", "error", "item")

    def __init__(self, item: Any):
        self.item = item
        self.answer: Any = None
        self.error: BaseException | None = None
        self.done = False


class GroupCall:
    def __init__(
        self,
        send: Callable[[list[Any]], Sequence[Any]],
        limit: int = 32,
        lanes: int = 1,
        linger: float = 0.0,
    ):
        self._send = send  # items -> one answer per item, in order
        self._limit = limit
        self._lanes = lanes
        self._linger = linger
        lock = threading.Lock()
        self._cond = threading.Condition(lock)  # a batch came back, or a lane is free
        self._arrived = threading.Condition(lock)  # for a lingering leader only
        self._want = limit  # riders a lingering leader waits for
        self._waiting: list[_Slot] = []
        self._in_flight = 0
        self._last_size = limit  # items of the batch that came back last (none: a full one)
        self.batches = 0
        self.items = 0

    def call(self, item: Any) -> Any:
        return self.call_many([item])[0]

    def call_many(self, items: Sequence[Any]) -> list[Any]:
        """One answer per item, in order; raises the error of a batch that carried any."""
        slots = [_Slot(item) for item in items]
        with self._cond:
            self._waiting.extend(slots)
            if len(self._waiting) >= self._want:
                self._arrived.notify()  # a lingering leader has its riders (if one lingers)
            while not all(slot.done for slot in slots):
                if self._in_flight >= self._lanes or not self._any_waiting(slots):
                    self._cond.wait()  # full, or our slots already travel in batches
                else:
                    self._lead()
        for slot in slots:
            if slot.error is not None:
                raise slot.error
        return [slot.answer for slot in slots]

    def _any_waiting(self, slots: list[_Slot]) -> bool:
        return any(slot in self._waiting for slot in slots)

    def _lead(self) -> None:
        """Send one batch; called and returns holding the lock."""
        self._in_flight += 1  # our lane, taken while we linger: arrivals ride with us
        if self._linger and self._in_flight > 1:
            self._gather(time.monotonic() + self._linger)
        batch, self._waiting = self._waiting[: self._limit], self._waiting[self._limit :]
        if not batch:  # a leader on another lane took them all while we lingered
            self._in_flight -= 1
            self._cond.notify_all()
            return
        self._cond.release()
        try:
            answers = list(self._send([slot.item for slot in batch]))
            if len(answers) != len(batch):
                raise RuntimeError(f"{len(answers)} answers for {len(batch)} items")
            for slot, answer in zip(batch, answers, strict=True):
                slot.answer = answer
        except Exception as e:  # every rider of this batch learns it failed
            for slot in batch:
                slot.error = e
        finally:
            self._cond.acquire()
            for slot in batch:
                slot.done = True
            self._in_flight -= 1
            self.batches += 1
            self.items += len(batch)
            self._last_size = len(batch)
            self._cond.notify_all()

    def _gather(self, until: float) -> None:
        """Wait, holding our lane, until `until` (monotonic) passes or as many wait as came
        back in the last batch: in a closed loop those callers are the ones coming back,
        so waiting longer only delays them (and a bigger load fills the batch anyway)."""
        self._want = min(self._limit, max(self._last_size, 1))
        while len(self._waiting) < self._want and (left := until - time.monotonic()) > 0:
            self._arrived.wait(left)
