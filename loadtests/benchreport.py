"""What `bench.py` prints and writes: the table against issue 23's targets, every node's
memory, the soak; bench.csv, bench_soak.csv and bench.png.

`run` is bench.Run: the ceilings' and scenarios' Results (ratio already set against
the best ceiling), the nodes' RSS at start, peak and end, the idle cluster's CPU, and
the soak if there was one.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

# Issue 23 (docs/scale.md §7): every target is relative to the best ceiling of the same
# run, so machines compare. ratio: acknowledged req/s at least limit x the best
# ceiling's req/s; cpu: CPU per acknowledged request (every node's processes) at most
# limit x the best ceiling's CPU per request.
TARGETS = {
    "lookup-cached": [("ratio", 0.9)],
    "lookup-uncached": [("ratio", 0.6)],
    "buy": [("ratio", 0.2), ("cpu", 8.0)],
    "order-3": [("cpu", 10.0)],
}
IDLE_LIMIT_MS = 60.0  # the whole idle cluster's CPU, ms per second
RSS_LIMIT_MB = 150.0  # every node (master + worker) at the end of the run
SOAK_GROWTH = 0.10  # how much a node's RSS may grow over the soak


def checks(result, unit_ms: float) -> list[tuple[str, str, bool]]:
    """(target, measured, met) for each of issue 23's targets on this scenario;
    `unit_ms` is the best ceiling's CPU per request."""
    out = []
    for kind, limit in TARGETS.get(result.name, []):
        if kind == "ratio":
            out.append((f">= {limit:.2f}x", f"{result.ratio:.2f}x", result.ratio >= limit))
        else:
            cpu = result.cpu_ms_per_ack
            times = cpu / unit_ms if unit_ms else math.inf
            measured = f"{_ms(cpu)} ms = {times:.1f} x"
            out.append((f"<= {limit:g} x CPU", measured, times <= limit))
    return out


def unit(run) -> float:
    """The best ceiling's CPU ms per request: the unit of the CPU targets."""
    return run.best.cpu_ms_per_ack if math.isfinite(run.best.cpu_ms_per_ack) else 0.0


def verdicts(run) -> list[tuple[str, str, str, bool]]:
    """Every target this run measured: (what, target, measured, met)."""
    out = [(r.name, *check) for r in run.scenarios for check in checks(r, unit(run))]
    if run.idle_cpu_ms_per_s is not None:
        idle = run.idle_cpu_ms_per_s
        out.append(
            (
                "idle cluster CPU",
                f"<= {IDLE_LIMIT_MS:g} ms/s",
                f"{idle:.0f} ms/s",
                idle <= IDLE_LIMIT_MS,
            )
        )
    if run.memory_end:
        node, worst = max(((n, mb) for n, (_, mb) in run.memory_end.items()), key=lambda x: x[1])
        out.append(
            (
                "RSS, every node at the end",
                f"< {RSS_LIMIT_MB:g} MB",
                f"{worst:.1f} MB ({node})",
                worst < RSS_LIMIT_MB,
            )
        )
    if run.soak:
        growth = run.soak.growth()
        node, (_, _, most) = max(growth.items(), key=lambda item: item[1][2])
        out.append(
            (
                "RSS growth over the soak",
                f"<= {SOAK_GROWTH:.0%}",
                f"{most:+.1%} ({node})",
                most <= SOAK_GROWTH,
            )
        )
    return out


def report(run, args) -> None:
    table(run)
    memory(run)
    if run.soak:
        soak(run.soak)
    found = verdicts(run)
    print(f"\ntargets (issue 23; CPU in units of {run.best.name}'s {unit(run):.3f} ms/req):")
    for what, target, measured, met in found:
        print(f"  {what:<28}{target:<18}{measured:<22}{'met' if met else 'NOT MET'}")
    write_csv(run, args.out, found)
    plot(run, args.out)
    print(f"targets met: {sum(met for *_, met in found)} of {len(found)}")


def table(run) -> None:
    best = run.best
    print(
        f"\nratios against the best ceiling: {best.name} ({best.ok_rps:.0f} req/s); "
        "req/s counts acknowledged (2xx/3xx) answers;\n"
        "CPU ms/req = utime + stime of every node's processes (the ceiling's own for a "
        "ceiling; not wrk's) / acknowledged requests;\n"
        f"CPU x = that as a multiple of {best.name}'s ({_ms(best.cpu_ms_per_ack)} ms)"
    )
    print(
        f"\n{'scenario':<18}{'req/s':>8}{'x best':>8}{'p50 ms':>8}{'p99 ms':>8}{'errors':>8}"
        f"{'CPU ms/req':>12}{'CPU x':>7}  {'target':<30}met"
    )
    rows = [*run.ceilings, *run.scenarios, *([run.soak.result] if run.soak else [])]
    for r in rows:
        found = checks(r, unit(run))
        target = ", ".join(t for t, _, _ in found) or ("(the ceiling)" if r is best else "")
        met = _met(found)
        print(
            f"{r.name:<18}{r.ok_rps:>8.0f}{r.ratio:>8.2f}{r.p50_ms:>8.2f}{r.p99_ms:>8.1f}"
            f"{r.errors:>8}{_ms(r.cpu_ms_per_ack):>12}{_times(r, unit(run)):>7}  {target:<30}{met}"
        )
    if run.idle_cpu_ms_per_s is not None:
        print(
            f"idle cluster: {run.idle_cpu_ms_per_s:.0f} ms CPU per second (over {run.idle_s:g} s, "
            "after the start settled), counted in the above"
        )


def _times(result, unit_ms: float) -> str:
    """CPU per request as a multiple of the best ceiling's ("13.5")."""
    cpu = result.cpu_ms_per_ack
    return f"{cpu / unit_ms:.1f}" if unit_ms and math.isfinite(cpu) else "-"


def _ms(value: float) -> str:
    return f"{value:.2f}" if math.isfinite(value) else "-"


def memory(run) -> None:
    print(
        f"\n{'node':<14}{'start MB':>10}{'peak MB':>10}{'end MB':>10}{'worker MB':>11}"
        f"   RSS of master + worker (worker alone at the end); target < {RSS_LIMIT_MB:g} MB"
    )
    for name, (worker, total) in sorted(run.memory_end.items()):
        start = run.memory_start.get(name, (0.0, 0.0))[1]
        peak = max(run.peaks.get(name, 0.0), total)
        verdict = "met" if total < RSS_LIMIT_MB else "NOT MET"
        print(f"{name:<14}{start:>10.1f}{peak:>10.1f}{total:>10.1f}{worker:>11.1f}   {verdict}")


def soak(result) -> None:
    samples = result.samples
    print(
        f"\nsoak: {len(samples)} samples over {samples[-1][0]:.0f} s; "
        f"RSS of master + worker; flagged if it grew more than {SOAK_GROWTH:.0%}"
    )
    print(f"{'node':<14}{'start MB':>10}{'end MB':>10}{'growth':>9}")
    for name, (start, end, growth) in sorted(result.growth().items()):
        flag = "  GREW" if growth > SOAK_GROWTH else ""
        print(f"{name:<14}{start:>10.1f}{end:>10.1f}{growth:>+9.1%}{flag}")


def write_csv(run, out: Path, found: list) -> None:
    with (out / "bench.csv").open("w", newline="") as f:
        rows = csv.writer(f)
        rows.writerow(
            ["scenario", "req_per_s", "wrk_req_per_s", "ratio_to_best_ceiling", "p50_ms", "p99_ms"]
            + [
                "requests",
                "acknowledged",
                "errors",
                "cpu_ms_per_ack",
                "cpu_x_best",
                "target",
                "met",
            ]
        )
        for r in [*run.ceilings, *run.scenarios, *([run.soak.result] if run.soak else [])]:
            found_here = checks(r, unit(run))
            rows.writerow(
                [r.name, f"{r.ok_rps:.1f}", f"{r.rps:.1f}", f"{r.ratio:.3f}", f"{r.p50_ms:.2f}"]
                + [f"{r.p99_ms:.2f}", r.requests, r.acknowledged, r.errors, _ms(r.cpu_ms_per_ack)]
                + [_times(r, unit(run))]
                + ["; ".join(t for t, _, _ in found_here), _met(found_here)]
            )
        rows.writerow([])
        rows.writerow(["node", "start_node_mb", "peak_node_mb", "end_node_mb", "end_worker_mb"])
        for name, (worker, total) in sorted(run.memory_end.items()):
            start = run.memory_start.get(name, (0.0, 0.0))[1]
            peak = max(run.peaks.get(name, 0.0), total)
            rows.writerow([name, f"{start:.1f}", f"{peak:.1f}", f"{total:.1f}", f"{worker:.1f}"])
        rows.writerow([])
        rows.writerow(["target_of", "target", "measured", "met"])
        for what, target, measured, met in found:
            rows.writerow([what, target, measured, "met" if met else "NOT MET"])
    print(f"\nwrote {out / 'bench.csv'}")
    if run.soak:
        with (out / "bench_soak.csv").open("w", newline="") as f:
            rows = csv.writer(f)
            rows.writerow(["second", "node", "worker_mb", "node_mb"])
            for second, sample in run.soak.samples:
                for name, (worker, total) in sorted(sample.items()):
                    rows.writerow([f"{second:.1f}", name, f"{worker:.1f}", f"{total:.1f}"])
        print(f"wrote {out / 'bench_soak.csv'}")


def _met(found: list) -> str:
    return ("met" if all(ok for *_, ok in found) else "NOT MET") if found else ""


def plot(run, out: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot (pip install '.[dev]')")
        return
    rows = [*run.ceilings, *run.scenarios, *([run.soak.result] if run.soak else [])]
    names = [r.name for r in rows]
    colours = ["#999999" if r.name.startswith("ceiling-") else "#4477aa" for r in rows]
    fig, (speed, latency, cpu) = plt.subplots(1, 3, figsize=(15, 4.5), sharey=True)
    speed.barh(names, [r.ok_rps for r in rows], color=colours)
    speed.set_xlabel("acknowledged requests/s")
    for i, r in enumerate(rows):
        speed.text(r.ok_rps, i, f" {r.ratio:.2f}x", va="center", fontsize=8)
    latency.barh(names, [r.p99_ms for r in rows], color="#cc6677", label="p99")
    latency.barh(names, [r.p50_ms for r in rows], color="#228833", label="p50")
    latency.set_xlabel("latency ms")
    latency.legend()
    costs = [r.cpu_ms_per_ack if math.isfinite(r.cpu_ms_per_ack) else 0.0 for r in rows]
    cpu.barh(names, costs, color=colours)
    cpu.set_xlabel("CPU ms per acknowledged request (all nodes)")
    for i, value in enumerate(costs):
        cpu.text(value, i, f" {value:.2f}", va="center", fontsize=8)
    speed.invert_yaxis()
    fig.suptitle(
        f"Bazar: throughput (x the best bare Flask ceiling, {run.best.name}), latency, CPU"
    )
    fig.tight_layout()
    fig.savefig(out / "bench.png", dpi=110)
    print(f"wrote {out / 'bench.png'}")
