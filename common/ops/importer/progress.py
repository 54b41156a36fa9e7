"""How far an import is, on stderr: a bar on a terminal, else a line per 10 %."""

from __future__ import annotations

import sys
import time
from typing import TextIO

WIDTH = 30  # characters of the bar


class Progress:
    def __init__(self, total: int, out: TextIO | None = None, clock=time.monotonic):
        self.total = max(total, 1)
        self.out = out or sys.stderr
        self.tty = self.out.isatty()
        self.clock = clock
        self.started = clock()
        self.done = 0
        self._tenths = 0  # tenths already reported (not on a terminal)

    def advance(self, rows: int) -> None:
        self.done += rows
        if self.tty:
            self.out.write(f"\r{self._bar()}")
        else:
            tenths = self.done * 10 // self.total
            if tenths > self._tenths:
                self._tenths = tenths
                self.out.write(f"import: {self._figures()}\n")
        self.out.flush()

    def note(self, text: str) -> None:
        """A line of news; on a terminal the bar is drawn again below it."""
        if self.tty:
            self.out.write(f"\r\033[K{text}\n{self._bar()}")
        else:
            self.out.write(f"import: {text}\n")
        self.out.flush()

    def finish(self) -> None:
        if self.tty:
            self.out.write("\n")
            self.out.flush()

    def rate(self) -> float:
        return self.done / max(self.clock() - self.started, 1e-9)

    def _bar(self) -> str:
        filled = WIDTH * self.done // self.total
        return f"[{'#' * filled}{'.' * (WIDTH - filled)}] {self._figures()}"

    def _figures(self) -> str:
        rate = self.rate()
        left = (self.total - self.done) / rate if rate else 0.0
        minutes, seconds = divmod(int(left), 60)
        return (
            f"{100 * self.done // self.total:3d}% {self.done}/{self.total} rows, "
            f"{rate:,.0f} rows/s, ETA {minutes}:{seconds:02d}"
        )
