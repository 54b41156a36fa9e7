"""What `bench.py --titles N --orders M` adds to the report: the scenarios at scale
against the same scenarios on the seed catalog, search and report latencies, a
backup rejoining, disk per node; bench_scale.csv and bench_scale.png."""

from __future__ import annotations

import csv
import statistics
from pathlib import Path

WITHIN = 0.90  # a scenario's req/s at scale: at least this share of the 7-title twin's


def verdicts(scale) -> list[tuple[str, str, str, bool]]:
    """(what, target, measured, met): each scenario's share at scale, the median of its
    paired runs' req/s at scale over req/s on the 7-title twin, the same requests on
    both (loadtests/scale.py)."""
    out = []
    for result, seed in zip(scale.scenarios, scale.seeds, strict=True):
        name = result.name.removesuffix("@scale")
        share = statistics.median(scale.shares[name])
        measured = f"{result.ok_rps:.0f} vs {seed.ok_rps:.0f} req/s (median {share:.0%})"
        out.append((result.name, f">= {WITHIN:.0%} of 7 titles", measured, share >= WITHIN))
    return out


def report(scale, out: Path) -> list[tuple[str, str, str, bool]]:
    found = verdicts(scale)
    print(f"\nat scale: {scale.titles:,} titles, {scale.orders:,} orders")
    print(f"  import {scale.import_s:.0f} s ({(scale.titles - 7) / scale.import_s:,.0f} titles/s)")
    print(f"  order load {scale.orders_s:.0f} s (straight into the replicas' files)")
    # joined: the share of the cache misses that joined a catalog read of the same book
    # already in flight (on 7 titles most do; among a million almost none can)
    header = ("req/s", "x best", "p50 ms", "p99 ms", "CPU ms", "joined")
    print(f"  {'scenario':<24}" + "".join(f"{h:>8}" for h in header))
    runs = zip(scale.seeds, scale.scenarios, scale.spreads, strict=True)
    for r in (run for trio in runs for run in trio):
        joined = "" if r.joined is None else f"{r.joined:.0%}"
        print(
            f"  {r.name:<24}{r.ok_rps:>8.0f}{r.ratio:>8.2f}{r.p50_ms:>8.1f}{r.p99_ms:>8.1f}"
            f"{r.cpu_ms_per_ack:>8.2f}{joined:>8}"
        )
    for name, (p50, p99) in scale.latencies.items():
        print(f"  {name:<24} p50 {p50:7.1f} ms   p99 {p99:7.1f} ms")
    missed = f"{scale.rejoin_rows:,}"
    print(f"  a backup that missed {missed} updates: up {scale.rejoin_s:.1f} s after its start")
    disk = ", ".join(f"{n} {mb:.0f}" for n, mb in sorted(scale.disk_mb.items()))
    print(f"  disk per node MB: {disk}")
    print("  req/s over the 7-title twin's, pair by pair (@scale: its requests; @spread: over")
    print("  the whole catalog, reported, not judged: size and the books asked for both differ)")
    for name, shares in scale.shares.items():
        print(f"  {name + '@scale':<24} {pairs_text(shares)}")
        print(f"  {name + '@spread':<24} {pairs_text(scale.spread_shares[name])}")
    for what, target, measured, met in found:
        print(f"  {what:<24} {target:<22} {measured:<28} {'met' if met else 'NOT met'}")
    write_csv(scale, found, out)
    plot(scale, out)
    return found


def pairs_text(shares: list[float]) -> str:
    """Each pair's share, as the report and the progress lines print them."""
    return ", ".join(f"{share:.2f}" for share in shares)


def write_csv(scale, found: list, out: Path) -> None:
    path = out / "bench_scale.csv"
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["kind", "name", "value", "unit"])
        writer.writerow(["size", "titles", scale.titles, "rows"])
        writer.writerow(["size", "orders", scale.orders, "rows"])
        writer.writerow(["load", "import", f"{scale.import_s:.1f}", "s"])
        for r in scale.scenarios:
            writer.writerow(["scenario", r.name, f"{r.ratio:.3f}", "x best ceiling"])
            writer.writerow(["scenario", r.name, f"{r.cpu_ms_per_ack:.3f}", "ms CPU/request"])
        for r in scale.seeds:
            writer.writerow(["twin", r.name, f"{r.ratio:.3f}", "x best ceiling"])
            writer.writerow(["twin", r.name, f"{r.cpu_ms_per_ack:.3f}", "ms CPU/request"])
        for r in scale.spreads:
            writer.writerow(["spread", r.name, f"{r.ratio:.3f}", "x best ceiling"])
            writer.writerow(["spread", r.name, f"{r.cpu_ms_per_ack:.3f}", "ms CPU/request"])
        for name, shares in scale.shares.items():
            writer.writerow(["pairs", name, pairs_text(shares), "req/s at scale / 7 titles"])
            spread = pairs_text(scale.spread_shares[name])
            writer.writerow(["pairs", f"{name} spread", spread, "req/s spread / 7 titles"])
        for name, (p50, p99) in scale.latencies.items():
            writer.writerow(["latency", f"{name} p50", f"{p50:.2f}", "ms"])
            writer.writerow(["latency", f"{name} p99", f"{p99:.2f}", "ms"])
        writer.writerow(
            ["rejoin", f"backup missed {scale.rejoin_rows}", f"{scale.rejoin_s:.1f}", "s"]
        )
        for node, mb in sorted(scale.disk_mb.items()):
            writer.writerow(["disk", node, f"{mb:.1f}", "MB"])
        for what, target, measured, met in found:
            writer.writerow(["target", what, measured, f"{target}: {'met' if met else 'not met'}"])
    print(f"wrote {path}")


def plot(scale, out: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot (pip install '.[dev]')")
        return
    names = [r.name.removesuffix("@scale") for r in scale.scenarios]
    fig, (ratios, waits) = plt.subplots(1, 2, figsize=(13, 4.5))
    y = range(len(names))
    bars = [
        (scale.seeds, "#999999", "7 titles (the twin, paired)"),
        (scale.scenarios, "#4477aa", f"{scale.titles:,} titles, the same requests"),
        (scale.spreads, "#88ccee", f"{scale.titles:,} titles, spread over them"),
    ]
    for k, (runs, color, label) in enumerate(bars):
        offsets = [i + (k - 1) * 0.27 for i in y]
        ratios.barh(offsets, [r.ratio for r in runs], height=0.27, color=color, label=label)
    ratios.set_yticks(list(y), names)
    ratios.set_xlabel("x the best bare Flask ceiling (same run)")
    ratios.legend()
    ratios.invert_yaxis()
    labels = list(scale.latencies)
    waits.barh(labels, [p99 for _, p99 in scale.latencies.values()], color="#cc6677", label="p99")
    waits.barh(labels, [p50 for p50, _ in scale.latencies.values()], color="#228833", label="p50")
    waits.set_xlabel("ms, one request at a time")
    waits.legend()
    waits.invert_yaxis()
    fig.suptitle(
        f"Bazar at {scale.titles:,} titles and {scale.orders:,} orders; a backup that missed "
        f"{scale.rejoin_rows:,} updates was up {scale.rejoin_s:.0f} s after its start"
    )
    fig.tight_layout()
    fig.savefig(out / "bench_scale.png", dpi=110)
    print(f"wrote {out / 'bench_scale.png'}")
