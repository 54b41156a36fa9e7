"""Timelines of a load scenario: what every request did, second by second, around the faults.

Both `loadtests/failover.py` and `scripts/fault_run.py` use this module:

- a `Recorder` keeps one `Outcome` per request (route, start, end, status,
  success, whether it was a write), from any number of threads;
- `per_second` folds them into one `Bucket` per second and route: requests
  completed, successes, errors, p50 and p99 latency;
- `longest_pause` finds the longest stretch without an acknowledged write,
  `recoveries` the time from each fault (and from its end) to the first
  acknowledged write that started after it;
- `write_outputs` writes `<prefix>_timeline.csv`, `<prefix>_faults.csv` and
  `<prefix>_timeline.png`, and `summary_lines` says the same in words.

Times are `time.monotonic()` seconds, which on Linux is one clock for every
process on the machine, so a locust process and the script that schedules the
faults can be compared directly; the outputs count seconds from an origin
(the start of the fault schedule).

Inside locust: loaded as an extra locustfile (`-f loadtests/locustfile.py,
loadtests/timeline.py`) with $BAZAR_TIMELINE_RAW set, this module records
every request locust makes and saves them to that path (see `Recorder.save`)
when locust quits. It defines no users, so it adds no traffic.
"""

from __future__ import annotations

import csv
import math
import os
import statistics
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

RAW_ENV = "BAZAR_TIMELINE_RAW"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
TIMELINE_COLUMNS = ["second", "route", "requests", "ok", "errors", "p50_ms", "p99_ms", "faults"]
FAULT_COLUMNS = [
    "fault",
    "start_s",
    "end_s",
    "first_write_s",
    "recovery_s",
    "recovery_after_end_s",
]
RAW_COLUMNS = ["route", "started", "ended", "status", "ok", "write"]


@dataclass(frozen=True)
class Outcome:
    """One request as the client saw it."""

    route: str  # "POST /buy/[id]": method and route pattern
    started: float
    ended: float
    status: int  # HTTP status; 0 when no answer came
    ok: bool  # the answer was right (a 410 "sold out" is a right answer to a buy)
    write: bool  # the request asks for a change (POST, PUT, PATCH, DELETE)

    @property
    def latency_ms(self) -> float:
        return (self.ended - self.started) * 1000

    @property
    def acknowledged(self) -> bool:
        """A write that was done and said so (2xx): a 410 changed nothing."""
        return self.write and self.ok and 200 <= self.status < 300


@dataclass(frozen=True)
class Fault:
    """A fault from the moment it was applied to the moment it was undone."""

    label: str  # "kill catalog-1", "isolate order-1", ...
    start: float
    end: float

    @property
    def kind(self) -> str:
        return self.label.split()[0] if self.label else "fault"


@dataclass(frozen=True)
class Bucket:
    """The requests of one route that completed within one second."""

    second: int
    route: str
    requests: int
    ok: int
    p50_ms: float | None
    p99_ms: float | None

    @property
    def errors(self) -> int:
        return self.requests - self.ok


@dataclass(frozen=True)
class Pause:
    """The longest stretch without an acknowledged write (seconds from the origin)."""

    length: float
    start: float
    end: float


@dataclass(frozen=True)
class Recovery:
    """How long after a fault the first acknowledged write came (None: none came)."""

    fault: Fault
    first_write: float | None  # when that write was acknowledged
    after_start: float | None  # fault start -> first write that started after it
    after_end: float | None  # fault end (restart, heal) -> first write that started after it


# -- recording ----------------------------------------------------------------------------


class Recorder:
    """Outcomes of requests, recorded from many threads (or greenlets) at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._outcomes: list[Outcome] = []

    def record(
        self, route: str, started: float, ended: float, status: int, ok: bool, write: bool
    ) -> None:
        with self._lock:
            self._outcomes.append(Outcome(route, started, ended, status, ok, write))

    def add(self, outcomes: Iterable[Outcome]) -> None:
        with self._lock:
            self._outcomes.extend(outcomes)

    def outcomes(self) -> list[Outcome]:
        """A copy, in order of completion."""
        with self._lock:
            return sorted(self._outcomes, key=lambda o: o.ended)

    def save(self, path: str | Path) -> None:
        """Every outcome as a row of a CSV file (monotonic times)."""
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(RAW_COLUMNS)
            for o in self.outcomes():
                times = [f"{o.started:.6f}", f"{o.ended:.6f}"]
                writer.writerow([o.route, *times, o.status, int(o.ok), int(o.write)])

    @classmethod
    def load(cls, path: str | Path) -> Recorder:
        recorder = cls()
        with open(path, newline="") as f:
            recorder.add(
                Outcome(
                    r["route"],
                    float(r["started"]),
                    float(r["ended"]),
                    int(r["status"]),
                    r["ok"] == "1",
                    r["write"] == "1",
                )
                for r in csv.DictReader(f)
            )
        return recorder


def install_locust_hook(path: str) -> None:
    """Inside a locust process: record every request, save them all to `path` on quit."""
    from locust import events  # only ever imported inside locust (it patches the process)

    recorder = Recorder()

    @events.request.add_listener
    def _on_request(request_type, name, response_time, response=None, exception=None, **_):
        ended = time.monotonic()
        status = getattr(response, "status_code", 0) or 0
        started = ended - (response_time or 0) / 1000
        write = request_type in WRITE_METHODS
        route, ok = f"{request_type} {name}", exception is None
        recorder.record(route, started, ended, status, ok, write)

    @events.quitting.add_listener
    def _save(**_):
        recorder.save(path)


# -- analysis -----------------------------------------------------------------------------


def percentile(values: list[float], q: int) -> float | None:
    """The q-th percentile (1..99) by linear interpolation; None for no values."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def per_second(outcomes: list[Outcome], origin: float, end: float) -> list[Bucket]:
    """One bucket per second in [origin, end) and per route, empty seconds included.

    A request counts in the second it completed; its latency is its whole wait,
    so a request that failed after a timeout shows that timeout."""
    seconds = max(1, math.ceil(end - origin))
    routes = sorted({o.route for o in outcomes})
    latencies: dict[tuple[int, str], list[float]] = defaultdict(list)
    oks: dict[tuple[int, str], int] = defaultdict(int)
    for o in outcomes:
        second = int(o.ended - origin) if o.ended >= origin else -1
        if 0 <= second < seconds:
            latencies[second, o.route].append(o.latency_ms)
            oks[second, o.route] += o.ok
    return [
        Bucket(
            second,
            route,
            len(latencies[second, route]),
            oks[second, route],
            percentile(latencies[second, route], 50),
            percentile(latencies[second, route], 99),
        )
        for second in range(seconds)
        for route in routes
    ]


def ack_times(outcomes: list[Outcome]) -> list[float]:
    """When each acknowledged write was answered, in order."""
    return sorted(o.ended for o in outcomes if o.acknowledged)


def longest_pause(acks: list[float], start: float, end: float, origin: float) -> Pause:
    """The longest gap in [start, end] between acknowledged writes (the ends count as
    acknowledgements), as seconds from `origin`."""
    points = [start] + [t for t in acks if start <= t <= end] + [end]
    gaps = [(b - a, a, b) for a, b in zip(points, points[1:], strict=False)]
    length, a, b = max(gaps, default=(0.0, start, start))
    return Pause(length, a - origin, b - origin)


def first_write_after(outcomes: list[Outcome], moment: float) -> Outcome | None:
    """The first acknowledged write that started at or after `moment`."""
    writes = [o for o in outcomes if o.acknowledged and o.started >= moment]
    return min(writes, key=lambda o: o.ended, default=None)


def recoveries(faults: list[Fault], outcomes: list[Outcome], origin: float) -> list[Recovery]:
    """For each fault: its first acknowledged write, and how long after start and end."""
    found = []
    for fault in faults:
        first = first_write_after(outcomes, fault.start)
        after_end = first_write_after(outcomes, fault.end)
        found.append(
            Recovery(
                fault,
                first.ended - origin if first else None,
                first.ended - fault.start if first else None,
                after_end.ended - fault.end if after_end else None,
            )
        )
    return found


def active_faults(faults: list[Fault], second: int, origin: float) -> list[str]:
    """Labels of the faults in force at some moment of [second, second + 1)."""
    lo, hi = origin + second, origin + second + 1
    return [f.label for f in faults if f.start < hi and f.end >= lo]


def where(pause: Pause, faults: list[Fault], origin: float) -> str:
    """Which faults a pause overlaps, in words."""
    labels = [
        f.label for f in faults if f.start - origin < pause.end and f.end - origin > pause.start
    ]
    return f"during {', '.join(labels)}" if labels else "during no fault"


# -- output ----------------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def _s(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def write_timeline_csv(
    buckets: list[Bucket], faults: list[Fault], origin: float, path: Path
) -> None:
    """One row per second and route; `faults` names what was in force that second."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(TIMELINE_COLUMNS)
        for b in buckets:
            active = "; ".join(active_faults(faults, b.second, origin))
            writer.writerow(
                [b.second, b.route, b.requests, b.ok, b.errors, _ms(b.p50_ms), _ms(b.p99_ms)]
                + [active]
            )


def write_faults_csv(found: list[Recovery], origin: float, path: Path) -> None:
    """One row per fault: when it began and ended, and how long writes took to come back."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(FAULT_COLUMNS)
        for r in found:
            start, end = r.fault.start - origin, r.fault.end - origin
            writer.writerow(
                [r.fault.label, _s(start), _s(end), _s(r.first_write)]
                + [_s(r.after_start), _s(r.after_end)]
            )


FAULT_COLORS = {"kill": "tab:red", "stop": "tab:orange"}  # every network cut: tab:blue


def plot(
    buckets: list[Bucket],
    found: list[Recovery],
    pause: Pause,
    origin: float,
    path: Path,
    title: str,
) -> None:
    """Throughput, errors and latency per route over time, the faults as shaded bands."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    routes = sorted({b.route for b in buckets})
    fig, axes = plt.subplots(3, 1, figsize=(11, 8.5), sharex=True, layout="constrained")
    for i, route in enumerate(routes):
        rows = [b for b in buckets if b.route == route]
        color = f"C{i % 10}"
        xs = [b.second + 0.5 for b in rows]
        axes[0].plot(xs, [b.ok for b in rows], color=color, label=route)
        axes[1].plot(xs, [b.errors for b in rows], color=color)
        _latency(axes[2], rows, color)
    for r in found:
        _band(axes, r, origin)
    axes[0].axvspan(pause.start, pause.end, facecolor="none", hatch="//", edgecolor="0.4", lw=0)
    axes[0].set_ylabel("successes / s")
    axes[1].set_ylabel("errors / s")
    axes[1].set_ylim(0, max([1] + [b.errors * 1.1 for b in buckets]))
    axes[0].set_ylim(bottom=0)
    axes[2].set_ylabel("latency ms\n(p99 solid, p50 dashed)")
    axes[2].set_yscale("log")
    axes[2].set_xlabel("seconds since the start of the schedule")
    axes[0].legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    axes[0].set_title(f"{title}\nlongest write pause {pause.length:.2f} s (hatched)", loc="left")
    for ax in axes:
        ax.grid(True, alpha=0.3)
        ax.set_xlim(0, max((b.second + 1 for b in buckets), default=1))
    fig.savefig(path, dpi=80, pil_kwargs={"optimize": True})
    plt.close(fig)


def _latency(ax, rows: list[Bucket], color: str) -> None:
    """p99 and p50; a second in which nothing completed leaves a gap in the line."""
    xs = [b.second + 0.5 for b in rows]
    ax.plot(xs, [math.nan if b.p99_ms is None else b.p99_ms for b in rows], color=color, lw=1.2)
    p50 = [math.nan if b.p50_ms is None else b.p50_ms for b in rows]
    ax.plot(xs, p50, color=color, lw=0.8, ls="--")


def _band(axes, r: Recovery, origin: float) -> None:
    """The fault as a band on every panel; its label and the first write after it on top."""
    color = FAULT_COLORS.get(r.fault.kind, "tab:blue")
    start, end = r.fault.start - origin, r.fault.end - origin
    for ax in axes:
        ax.axvspan(start, end, color=color, alpha=0.15, lw=0)
    top = axes[0]
    label = dict(transform=top.get_xaxis_transform(), fontsize="small", va="top")
    box = dict(facecolor="white", alpha=0.8, lw=0, pad=1)
    top.text(start, 0.98, f" {r.fault.label}", bbox=box, **label)
    if r.first_write is not None:
        for ax in axes:
            ax.axvline(r.first_write, color=color, ls=":", lw=1)
        top.text(r.first_write, 0.88, f" first write +{r.after_start:.2f} s", bbox=box, **label)


def summary_lines(pause: Pause, found: list[Recovery], faults: list[Fault], origin: float):
    """The longest write pause and each fault's recovery, in words."""
    lines = [
        f"longest write pause: {pause.length:.2f} s, from {pause.start:.2f} s "
        f"to {pause.end:.2f} s ({where(pause, faults, origin)})"
    ]
    for r in found:
        start = r.fault.start - origin
        if r.after_start is None:
            lines.append(f"  {r.fault.label} at {start:.1f} s: no acknowledged write after it")
            continue
        heal = f", {r.after_end:.2f} s after it ended" if r.after_end is not None else ""
        lines.append(
            f"  {r.fault.label} at {start:.1f} s: first acknowledged write "
            f"{r.after_start:.2f} s after it began{heal}"
        )
    return lines


def write_outputs(
    outcomes: list[Outcome],
    faults: list[Fault],
    origin: float,
    span: tuple[float, float],
    prefix: str | Path,
    title: str,
) -> list[str]:
    """Write the CSVs and the PNG for one run; return the lines to print (paths included).

    `span` is the stretch of the run in which writes were expected: the pause
    is measured inside it."""
    prefix = Path(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    paths = {kind: Path(f"{prefix}_{kind}") for kind in ("timeline.csv", "faults.csv")}
    paths["png"] = Path(f"{prefix}_timeline.png")
    buckets = per_second(outcomes, origin, span[1])
    pause = longest_pause(ack_times(outcomes), span[0], span[1], origin)
    found = recoveries(faults, outcomes, origin)
    write_timeline_csv(buckets, faults, origin, paths["timeline.csv"])
    write_faults_csv(found, origin, paths["faults.csv"])
    plot(buckets, found, pause, origin, paths["png"], title)
    return summary_lines(pause, found, faults, origin) + [
        f"timeline: {paths['timeline.csv']}",
        f"faults:   {paths['faults.csv']}",
        f"plot:     {paths['png']}",
    ]


if os.environ.get(RAW_ENV) and "locust" in sys.modules:
    install_locust_hook(os.environ[RAW_ENV])
