"""Group call: concurrent callers share one request instead of sending one each.

`call(item)` waits until a batch carrying `item` has been sent and returns
that item's answer. If no batch is in flight, the caller leads the next one
with everything waiting (up to `limit`); callers arriving meanwhile ride the
batch after. One batch at a time per GroupCall, so a busy writer sees a few
large requests, not many small ones (the order servers' group commit at the
catalog primary). If sending fails, every item of that batch gets the error.
"""

from __future__ import annotations

import threading
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
    def __init__(self, send: Callable[[list[Any]], Sequence[Any]], limit: int = 32):
        self._send = send  # items -> one answer per item, in order
        self._limit = limit
        self._cond = threading.Condition()
        self._waiting: list[_Slot] = []
        self._busy = False
        self.batches = 0
        self.items = 0

    def call(self, item: Any) -> Any:
        slot = _Slot(item)
        with self._cond:
            self._waiting.append(slot)
            while not slot.done:
                if self._busy:
                    self._cond.wait()
                else:
                    self._lead()
        if slot.error is not None:
            raise slot.error
        return slot.answer

    def _lead(self) -> None:
        """Send one batch; called and returns holding the lock."""
        batch, self._waiting = self._waiting[: self._limit], self._waiting[self._limit :]
        self._busy = True
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
            self._busy = False
            self.batches += 1
            self.items += len(batch)
            self._cond.notify_all()
