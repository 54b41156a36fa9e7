"""The parts of `bench.py` that are not the plan: wrk and its Lua scripts, the bare
Flask ceilings, and what the nodes' processes spend (CPU seconds, RSS) from /proc.

`ab.py` uses some of these too (through `bench`, which re-exports them).
"""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.ops import procs  # noqa: E402
from tests.support.cluster import LocalCluster, wait_until  # noqa: E402

HERE = Path(__file__).resolve().parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20

# Each wrk thread runs its own copy of a script. `setup` runs once per thread in the
# main copy and hands that thread a global `thread_id` (a `local` of the same name would
# shadow it), and `init` seeds the thread's random numbers with it: LuaJIT starts every
# copy from the same seed, so two threads asked the same books in the same order at the
# same moment, and at a million titles half the "uncached" lookups joined the other
# thread's read of the same book (docs/performance.md, "Uncached lookups at a million:
# size or spread").
_THREADS = """
local threads = 0
function setup(thread) threads = threads + 1; thread:set("thread_id", threads) end
function init(args) math.randomseed(thread_id * 1000003 + os.time()) end
"""
# Keys differ across threads too: with the same keys the second of each pair would be an
# idempotent replay, not a buy.
_KEYED = (
    _THREADS
    + """
local counter, run = 0, os.getenv("BENCH_RUN")
local function next_key(kind)
  counter = counter + 1
  return string.format("bench-%s-%s-%d-%d", kind, run, thread_id, counter)
end
"""
)
BUY_LUA = (
    _KEYED
    + """
request = function()
  local key = next_key("buy")
  return wrk.format("POST", "/buy/" .. (counter % 7 + 1),
    {["Idempotency-Key"] = key, ["Content-Type"] = "application/json"}, '{"quantity": 1}')
end
"""
)
ORDER_LUA = (
    _KEYED
    + """
local line = '{"book_id": %d, "quantity": 1}'
request = function()
  local key = next_key("order")
  local a = counter % 7
  local body = '{"items": [' .. string.format(line, a + 1) .. ", "
    .. string.format(line, (a + 1) % 7 + 1) .. ", " .. string.format(line, (a + 2) % 7 + 1) .. "]}"
  return wrk.format("POST", "/orders",
    {["Idempotency-Key"] = key, ["Content-Type"] = "application/json"}, body)
end
"""
)
# Any seed book, at random, as the scale run's uncached lookups ask any of its titles
# (loadtests/scale.py): one book only would mostly measure the front-end's coalescing
# of concurrent reads of it (frontend/coalesce.py), which a big catalog rarely gets.
ANY_BOOK_LUA = (
    _THREADS
    + """
request = function()
  return wrk.format("GET", "/lookup/" .. math.random(7))
end
"""
)
UPDATE_LUA = """
local counter, auth = 0, "Bearer " .. os.getenv("BAZAR_STAFF_TOKEN")
request = function()
  counter = counter + 1
  local body = string.format('{"price": %d.5}', 10 + counter % 50)
  return wrk.format("PUT", "/update/price/" .. (counter % 7 + 1),
    {["Authorization"] = auth, ["Content-Type"] = "application/json"}, body)
end
"""


# -- wrk --------------------------------------------------------------------------------
@dataclass
class Result:
    name: str
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int  # non-2xx/3xx answers + socket errors (connect, read, write, timeout)
    requests: int = 0  # answers wrk read
    non2xx: int = 0
    cpu_s: float = 0.0  # the measured processes' utime + stime over the run
    cpu_by_node: dict = field(default_factory=dict)  # node -> CPU seconds over the run
    wakeups_by_node: dict = field(default_factory=dict)  # node -> wake-ups over the run
    # The front-end's catalog reads for what its cache could not answer (books and search
    # pages) over the run: (reads made, misses that joined a read of the same key)
    reads: tuple[int, int] = (0, 0)
    ratio: float = 0.0  # req/s against the best ceiling

    @property
    def acknowledged(self) -> int:
        return self.requests - self.non2xx

    @property
    def ok_rps(self) -> float:
        """Acknowledged (2xx/3xx) answers per second: failures are not throughput."""
        return self.rps * self.acknowledged / self.requests if self.requests else 0.0

    @property
    def joined(self) -> float | None:
        """The share of cache misses served by another's read of the same book or page
        (frontend/coalesce.py); None if nothing missed."""
        made, joined = self.reads
        return joined / (made + joined) if made + joined else None

    @property
    def cpu_ms_per_ack(self) -> float:
        return self.cpu_s * 1000 / self.acknowledged if self.acknowledged else float("inf")


def combined(results: list[Result]) -> Result:
    """Several runs of one thing as one: answers, time and CPU (each node's too) summed;
    latencies averaged. Named as the first."""
    seconds = sum(r.requests / r.rps for r in results if r.rps)
    requests = sum(r.requests for r in results)
    by_node: dict[str, float] = {}
    for result in results:
        for node, cpu in result.cpu_by_node.items():
            by_node[node] = by_node.get(node, 0.0) + cpu
    return Result(
        results[0].name,
        requests / seconds if seconds else 0.0,
        sum(r.p50_ms for r in results) / len(results),
        sum(r.p99_ms for r in results) / len(results),
        sum(r.errors for r in results),
        requests,
        sum(r.non2xx for r in results),
        sum(r.cpu_s for r in results),
        by_node,
        reads=(sum(r.reads[0] for r in results), sum(r.reads[1] for r in results)),
    )


def stock_up(cluster: LocalCluster, ids=range(1, 8)) -> None:
    for book_id in ids:  # stock high enough that no buy or order is refused
        assert cluster.api.set_quantity(book_id, 1_000_000_000).status_code == 200


def write_script(text: str, folder: str | Path | None = None) -> str:
    handle = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False, dir=folder)
    handle.write(text)
    handle.close()
    return handle.name


def wrk(name: str, url: str, extra: list[str], script: str | None, args, token: str) -> Result:
    """One wrk run: `args.threads` threads, `args.connections` connections, `args.seconds`."""
    command = [
        "wrk",
        f"-t{min(args.threads, args.connections)}",  # wrk refuses more threads than connections
        f"-c{args.connections}",
        f"-d{args.seconds}s",
        "--latency",
        *extra,
        *(["-s", script] if script else []),
        url,
    ]
    env = {**os.environ, "BENCH_RUN": uuid.uuid4().hex[:8], "BAZAR_STAFF_TOKEN": token}
    out = subprocess.run(  # noqa: S603  # nosec B603
        command, capture_output=True, text=True, env=env, check=True, timeout=args.seconds + 60
    ).stdout
    return parse_wrk(name, out)


def parse_wrk(name: str, out: str) -> Result:
    non2xx = _count(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    return Result(
        name,
        float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        _latency(out, "50%"),
        _latency(out, "99%"),
        non2xx + (sum(map(int, sockets.groups())) if sockets else 0),
        requests=_count(r"(\d+) requests in", out),
        non2xx=non2xx,
    )


def _count(pattern: str, out: str) -> int:
    match = re.search(pattern, out)
    return int(match.group(1)) if match else 0


def _latency(out: str, percentile: str) -> float:
    value, unit = re.search(rf"{percentile}\s+([\d.]+)(us|ms|s)", out).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


# -- the ceilings ---------------------------------------------------------------------------
class Ceiling:
    """loadtests/ceiling.py under gunicorn, one worker of `worker_class`, in a session of
    its own (so its process group is the master and its worker)."""

    def __init__(self, worker_class: str, threads: int):
        self.worker_class = worker_class
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        command = [
            *(sys.executable, "-m", "gunicorn", "--chdir", str(HERE), "-w", "1"),
            *("-k", worker_class, "--keep-alive", "5", "--no-control-socket"),
            *(("--threads", str(threads)) if worker_class == "gthread" else ()),
            *(("--worker-connections", "256") if worker_class == "gevent" else ()),
            *("-b", f"127.0.0.1:{port}", "--log-level", "warning", "ceiling:app"),
        ]
        self.process = subprocess.Popen(  # noqa: S603  # nosec B603
            command, stdout=subprocess.DEVNULL, start_new_session=True
        )
        try:
            wait_until(lambda: answers(self.url + "/lookup/1"), 30, f"the {worker_class} ceiling")
        except BaseException:
            self.stop()
            raise

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(pid) for pid in group_pids(self.process.pid))

    def stop(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(10)


def frontend_reads(cluster: LocalCluster) -> tuple[int, int]:
    """The front-end's (catalog reads made, cache misses that joined another's) so far,
    from its /health."""
    cache = cluster.api.get("/health").json()["cache"]
    return cache["fetches"], cache["coalesced"]


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310  # nosec B310
            return response.status == 200
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- what the nodes spend, from /proc -----------------------------------------------------
def group_pids(pgid: int) -> list[int]:
    """Every live process in process group `pgid` (a node: its gunicorn master, its worker
    and anything they started; `bazar` starts each node in a session of its own)."""
    return process_groups().get(pgid, [])


def process_groups() -> dict[int, list[int]]:
    """pgid -> pids, for every process on the machine (one pass over /proc)."""
    groups: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))):
            groups.setdefault(int(stat[2]), []).append(int(entry.name))
    return groups


def _stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat from field 3 (state) on: the command name may hold spaces."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def cpu_seconds(pid: int) -> float:
    stat = _stat(pid)
    return (int(stat[11]) + int(stat[12])) / CLOCK_TICKS if stat else 0.0  # utime + stime


def rss_mb(pid: int) -> float:
    stat = _stat(pid)
    return int(stat[21]) * PAGE_MB if stat else 0.0


def _children(pid: int) -> list[int]:
    """The direct children of `pid` (ab.py's way of finding a node's worker)."""
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (FileNotFoundError, ValueError):
        return []


def node_masters(cluster: LocalCluster) -> dict[str, int]:
    """Each running node's gunicorn master (its pid file), which leads its process group."""
    masters = {}
    for node in cluster.cluster.nodes.values():
        if pid := procs.running_pid(cluster.cluster, node):
            masters[node.name] = pid
    return masters


def cluster_cpu_seconds(masters: dict[str, int]) -> float:
    """utime + stime of every process of every node (not the wrk client's, not ours)."""
    return sum(node_cpu_seconds(masters).values())


def node_cpu_seconds(masters: dict[str, int]) -> dict[str, float]:
    """node -> utime + stime of its process group (master and worker)."""
    return _per_node(masters, cpu_seconds)


def _per_node(masters: dict[str, int], of_process):
    """node -> `of_process(pid)` summed over the processes of its group."""
    groups = process_groups()
    return {
        name: sum(of_process(pid) for pid in groups.get(master, []))
        for name, master in masters.items()
    }


def paced_cpu_ms(url: str, cpu_seconds, gap: float, seconds: float) -> float:
    """CPU ms per request of a server asked one GET at a time on one kept-alive connection,
    `gap` seconds apart, for `seconds` (`cpu_seconds`: the server's CPU so far)."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    try:
        conn.request("GET", parts.path)
        conn.getresponse().read()  # connected before the count starts
        count, before, end = 0, cpu_seconds(), time.monotonic() + seconds
        while time.monotonic() < end:
            conn.request("GET", parts.path)
            conn.getresponse().read()
            count += 1
            time.sleep(gap)
        return (cpu_seconds() - before) * 1000 / count
    finally:
        conn.close()


def node_wakeups(masters: dict[str, int]) -> dict[str, int]:
    """node -> times its threads went to sleep and were woken (voluntary context switches of
    every thread of its process group): what an idle node mostly pays for."""
    return _per_node(masters, wakeups)


def wakeups(pid: int) -> int:
    total = 0
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            status = (task / "status").read_text()
        except OSError:  # the thread or the process ended
            continue
        for line in status.splitlines():
            if line.startswith("voluntary_ctxt_switches:"):
                total += int(line.split()[1])
    return total


def node_rss(masters: dict[str, int]) -> dict[str, tuple[float, float]]:
    """node -> (worker MB, node MB): the node is the sum over its process group (master +
    worker). RSS counts pages the worker still shares with its master twice, so the node
    figure errs high."""
    memory, groups = {}, process_groups()
    for name, master in masters.items():
        pids = groups.get(master, [])
        total = sum(rss_mb(pid) for pid in pids)
        memory[name] = (total - rss_mb(master) if len(pids) > 1 else 0.0, total)
    return memory


class MemorySampler(threading.Thread):
    """Every node's RSS every `period` seconds until stopped: peaks and the samples."""

    def __init__(self, masters: dict[str, int], period: float):
        super().__init__(daemon=True)
        self.masters = masters
        self.period = period
        self.samples: list[tuple[float, dict[str, tuple[float, float]]]] = []
        self._done = threading.Event()
        self._began = time.monotonic()

    def run(self) -> None:
        while True:
            self.samples.append((time.monotonic() - self._began, node_rss(self.masters)))
            if self._done.wait(self.period):
                return

    def stop(self) -> list[tuple[float, dict[str, tuple[float, float]]]]:
        self._done.set()
        self.join()
        self.samples.append((time.monotonic() - self._began, node_rss(self.masters)))
        return self.samples

    def peaks(self) -> dict[str, float]:
        peaks: dict[str, float] = {}
        for _, memory in self.samples:
            for name, (_, total) in memory.items():
                peaks[name] = max(peaks.get(name, 0.0), total)
        return peaks
