"""What a fault run (tests/support/faults.py) saw: the figures, the table, the bounds.

The checker's violations are in `violations`; `out_of_bounds` adds what is
not wrong but too slow or too lossy: more failed reads than a run may
have, a longer stretch without any acknowledged write than its faults
explain, fewer faults of a kind than asked for.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

from tests.support.history import History

# A failed read is one that got no 200 after the front-end's own retries. A killed
# replica costs none (the front-end reads another, tests/e2e/test_concurrency.py);
# what fails is the few seconds a majority needs for a new lease after the writer
# dies or is cut off, when no copy holds a read lease. One fault in the interval
# with about lease_duration + read_lease seconds of that makes a few percent.
MAX_READ_FAILURE_RATIO = 0.05


def max_write_pause(downtime: float, lease: float, read_timeout: float) -> float:
    """The longest a run may go without any acknowledged write: a fault's `downtime`, then
    a lease run out (the old holder's, before anyone may acquire), a call that waits out
    `read_timeout` on a dead node, and 2 s for the election and the new holder's catch-up."""
    return downtime + lease + read_timeout + 2.0


@dataclass
class Report:
    acked: int = 0  # purchases of both kinds
    rejected: int = 0
    unknown: int = 0
    # per kind ("single", "multi"): Counter of outcomes ("ok", "rejected", "unknown")
    by_kind: dict[str, Counter] = field(default_factory=dict)
    unknown_ended: Counter = field(default_factory=Counter)  # unanswered: status after heal
    orders_confirmed: int = 0  # on the order replicas after heal, both kinds
    order_lines: int = 0  # order_items lines of the confirmed orders
    revenue: Decimal = Decimal("0.00")  # Σ quantity × unit_price of the confirmed orders
    read_failures: int = 0  # the buyers' lookups, and the price readers' below
    reads: int = 0
    made: Counter = field(default_factory=Counter)  # faults per kind
    fault_minimum: int = 0  # of every kind asked for
    kills: Counter = field(default_factory=Counter)
    partitions: Counter = field(default_factory=Counter)
    price_writes: int = 0
    price_reads: int = 0
    price_read_failures: int = 0
    stale_reads: int = 0
    wrong_reads: int = 0  # of a value nobody wrote, or back in time
    # back in time while the higher value's write was unanswered: allowed (design §7),
    # counted to show how far reads are from linearizable
    in_flight_backward: int = 0
    # searches (issue 23): the librarian's withdraws, restores and renames acknowledged,
    # searches answered and failed, and the stale ones among them
    search_changes: int = 0
    searches: int = 0
    search_failures: int = 0
    stale_searches: int = 0
    # staff (issue 22): writes per account and outcome, sign-ins, 401s, the audit trail
    staff_acked: Counter = field(default_factory=Counter)  # per account, admin too
    staff_refused: int = 0  # 4xx (a 401 among them: the member signed in again)
    staff_unknown: int = 0  # 5xx or no answer
    staff_unauthorized: int = 0  # 401s on writes
    sign_ins: int = 0
    audit_entries: int = 0
    audit_by_staff: Counter = field(default_factory=Counter)
    audit_unknown: tuple[int, int] = (0, 0)  # unknown-outcome writes with an entry, of all
    longest_pause: float = 0.0
    violations: list[str] = field(default_factory=list)
    # for timelines (loadtests/timeline.py), monotonic times: the load's span,
    # the nemesis's faults (began, ended, what) and the staff's price history
    span: tuple[float, float] = (0.0, 0.0)
    settled: float = 0.0  # seconds from the end of the load to healed and checked
    converged: float = 0.0  # seconds from every node up again to identical replicas
    faults: list[tuple[float, float, str]] = field(default_factory=list)
    price_history: History | None = None
    staff_writes: list = field(default_factory=list)  # every StaffWrite, for timelines

    @property
    def unknown_ratio(self) -> float:
        return self.unknown / max(self.acked, 1)

    @property
    def read_failure_ratio(self) -> float:
        failed = self.read_failures + self.price_read_failures
        return failed / max(self.reads + self.price_reads + self.price_read_failures, 1)

    def kind(self, kind: str, outcome: str) -> int:
        return self.by_kind.get(kind, Counter())[outcome]

    def out_of_bounds(self, max_read_failure_ratio: float, max_pause: float) -> list[str]:
        """What exceeded the run's stated bounds (empty: nothing did)."""
        problems = []
        if self.read_failure_ratio > max_read_failure_ratio:
            problems.append(
                f"{self.read_failure_ratio:.2%} of reads failed, more than "
                f"{max_read_failure_ratio:.0%}"
            )
        if self.longest_pause > max_pause:
            problems.append(
                f"no write was acknowledged for {self.longest_pause:.2f} s, more than {max_pause} s"
            )
        return problems

    def _split(self, outcome: str) -> str:
        return f"single {self.kind('single', outcome)}, multi {self.kind('multi', outcome)}"

    @staticmethod
    def _by(counts: Counter) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "-"

    def table(self) -> str:
        ended = ", ".join(f"{k} {v}" for k, v in sorted(self.unknown_ended.items())) or "-"
        made = ", ".join(f"{k}={v}" for k, v in sorted(self.made.items())) or "-"
        rows = [
            (
                "load / heal and check",
                f"{self.span[1] - self.span[0]:.1f} s / {self.settled:.1f} s",
            ),
            ("replicas identical", f"{self.converged:.1f} s after every node was up again"),
            ("faults by kind", f"{made} (at least {self.fault_minimum} each)"),
            ("kills", sum(self.kills.values())),
            ("  by node", ", ".join(f"{k}={v}" for k, v in sorted(self.kills.items())) or "-"),
            ("partitions", sum(self.partitions.values())),
            ("  by kind", ", ".join(f"{k}={v}" for k, v in sorted(self.partitions.items())) or "-"),
            ("acknowledged purchases (201)", f"{self.acked} ({self._split('ok')})"),
            ("out of stock (410)", f"{self.rejected} ({self._split('rejected')})"),
            ("unknown after retries", f"{self.unknown} ({self.unknown_ratio:.2%} of acked)"),
            ("  by kind / after heal", f"{self._split('unknown')} / {ended}"),
            ("confirmed orders / lines", f"{self.orders_confirmed} / {self.order_lines}"),
            ("revenue (exact)", str(self.revenue)),
            ("reads / failed reads", f"{self.reads} / {self.read_failures}"),
            ("price writes acked / price reads", f"{self.price_writes} / {self.price_reads}"),
            ("  failed price reads", self.price_read_failures),
            ("  of all reads failed", f"{self.read_failure_ratio:.2%}"),
            ("stale reads", self.stale_reads),
            ("unwritten or backward reads", self.wrong_reads),
            ("  back during a write in flight", f"{self.in_flight_backward} (allowed)"),
            ("withdraws/renames acked / searches", f"{self.search_changes} / {self.searches}"),
            (
                "  failed searches / stale searches",
                f"{self.search_failures} / {self.stale_searches}",
            ),
            (
                "staff writes acked",
                f"{sum(self.staff_acked.values())} ({self._by(self.staff_acked)})",
            ),
            ("  refused (4xx) / unknown", f"{self.staff_refused} / {self.staff_unknown}"),
            ("  401s (signed in again) / sign-ins", f"{self.staff_unauthorized} / {self.sign_ins}"),
            ("audit entries", f"{self.audit_entries} ({self._by(self.audit_by_staff)})"),
            ("  of unknown-outcome writes", "{} of {}".format(*self.audit_unknown)),
            ("longest write pause", f"{self.longest_pause:.2f} s"),
            ("invariant violations", len(self.violations)),
        ]
        width = max(len(r[0]) for r in rows)
        lines = [f"{name:<{width}}  {value}" for name, value in rows]
        if self.violations:  # when each fault was in force, to set against the problems' times
            lines += [
                f"  t+{a - self.span[0]:.2f}s..{b - self.span[0]:.2f}s {what}"
                for a, b, what in self.faults
            ]
        return "\n".join(lines + [f"  ! {v}" for v in self.violations])
