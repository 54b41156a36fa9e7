"""Test threads whose errors are kept: a worker that dies fails the test, never quietly.

A plain `threading.Thread` that raises prints a traceback to stderr and ends;
the test then checks what the surviving threads did and may pass. Workers
keep every exception (and every thread still running after its join) so the
caller asserts there were none.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable


class Workers:
    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()

    def spawn(self, target: Callable[..., object], *args: object, name: str | None = None) -> None:
        thread = threading.Thread(target=self._guarded, args=(target, args), daemon=True)
        thread.name = name or f"{getattr(target, '__name__', 'worker')}-{len(self.threads)}"
        self.threads.append(thread)
        thread.start()

    def _guarded(self, target: Callable[..., object], args: tuple) -> None:
        try:
            target(*args)
        except BaseException as e:  # kept for the test to fail on, whatever it was
            what = traceback.format_exception_only(type(e), e)[-1].strip()
            with self._lock:
                self.errors.append(f"{threading.current_thread().name}: {what}")

    def join(self, timeout: float = 60.0) -> list[str]:
        """Wait for every thread; the errors, and the threads that did not end in time."""
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        stuck = [
            f"{t.name}: still running {timeout:g} s after join"
            for t in self.threads
            if t.is_alive()
        ]
        with self._lock:
            return self.errors + stuck

    def join_or_fail(self, timeout: float = 60.0) -> None:
        problems = self.join(timeout)
        assert problems == [], "a worker thread failed:\n" + "\n".join(problems)
