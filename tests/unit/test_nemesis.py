"""The nemesis on a fake cluster: every error it meets fails the run, and it counts per kind."""

from __future__ import annotations

import subprocess
import time
from types import SimpleNamespace

import pytest

from tests.support.faults import fault_minimum
from tests.support.nemesis import MixedNemesis

NAMES = ["frontend-1", "catalog-1", "catalog-2", "order-1", "recovery-1"]


class FakeCluster:
    """What the nemesis calls; `bazar` may be told to raise, as a hung CLI would."""

    def __init__(self, bazar_raises: Exception | None = None):
        self.cluster = SimpleNamespace(
            nodes=dict.fromkeys(NAMES),
            voters=[SimpleNamespace(name=n) for n in ("catalog-1", "catalog-2", "recovery-1")],
        )
        self.bazar_raises = bazar_raises
        self.calls: list[tuple] = []

    def names(self, service: str) -> list[str]:
        return [n for n in NAMES if n.startswith(service)]

    def kill(self, name: str) -> None:
        self.calls.append(("kill", name))

    def start(self, name: str, wait: bool = True) -> None:
        self.calls.append(("start", name))

    def wait_state(self, name: str, state: str = "up", timeout: float = 30.0) -> None:
        self.calls.append(("wait", name))

    def bazar(self, *args: str):
        if self.bazar_raises is not None and args[0] == "partition":
            raise self.bazar_raises
        self.calls.append(args)


def run_until(nemesis: MixedNemesis, done, timeout: float = 10.0) -> None:
    nemesis.start()
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        time.sleep(0.01)
    nemesis.stop()


def test_a_cli_timeout_stops_the_nemesis_and_is_an_error_not_silence():
    hung = subprocess.TimeoutExpired(["bazar", "partition"], 120)
    nemesis = MixedNemesis(FakeCluster(bazar_raises=hung), ("isolate",), 0.02, 0.01)
    run_until(nemesis, lambda: nemesis.errors)
    assert len(nemesis.errors) == 1
    assert "isolate" in nemesis.errors[0] and "TimeoutExpired" in nemesis.errors[0]
    assert nemesis.made["isolate"] == 0 and nemesis.short_of(1) == {"isolate": 0}


def test_any_exception_in_a_fault_is_kept():
    def broken(nemesis: MixedNemesis) -> str:
        raise KeyError("no such node")

    nemesis = MixedNemesis(FakeCluster(), ("kill", "broken"), 0.02, 0.01, extra={"broken": broken})
    run_until(nemesis, lambda: nemesis.errors)
    assert nemesis.errors and "broken: KeyError" in nemesis.errors[0]


def test_faults_are_counted_per_kind_and_extra_kinds_plug_in_as_functions():
    paused: list[str] = []

    def pause(nemesis: MixedNemesis) -> str:
        paused.append(nemesis.random.choice(nemesis.victims))
        return f"pause {paused[-1]}"

    kinds = ("kill", "isolate", "halves", "bridge", "pause")
    nemesis = MixedNemesis(FakeCluster(), kinds, 0.01, 0.0, extra={"pause": pause})
    run_until(nemesis, lambda: not nemesis.short_of(3))
    assert nemesis.errors == []
    assert nemesis.short_of(3) == {} and set(nemesis.made) == set(kinds)
    assert len(paused) == nemesis.made["pause"]
    assert sum(nemesis.kills.values()) == nemesis.made["kill"]
    assert sum(nemesis.partitions.values()) == nemesis.count - nemesis.made["kill"] - len(paused)
    assert len(nemesis.events) == nemesis.count


def test_an_unknown_kind_is_refused_before_the_run():
    with pytest.raises(ValueError, match="no such fault kind: clock"):
        MixedNemesis(FakeCluster(), ("kill", "clock"), 1.0, 1.0)


def test_a_fault_still_busy_after_stop_is_an_error():
    nemesis = MixedNemesis(FakeCluster(), ("kill",), 0.01, 0.0)
    nemesis.faults["kill"] = lambda: time.sleep(0.5) or "slow"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("tests.support.nemesis.JOIN_TIMEOUT", 0.05)
        nemesis.start()
        time.sleep(0.1)
        nemesis.stop()
    assert nemesis.errors == ["nemesis still busy 0 s after stop"]


def test_the_minimum_per_kind_follows_the_run_length_and_interval():
    assert fault_minimum(30, 2.0, 2.0, ("kill",), rounds=1) == 3  # a kill takes up to 5 s
    assert fault_minimum(600, 4.0, 3.0, ("kill", "isolate", "halves", "bridge"), rounds=1) == 12
    assert fault_minimum(120, 10.0, 2.0, ("kill", "isolate"), rounds=1) == 3
    assert fault_minimum(10, 4.0, 2.0, ("kill", "isolate", "halves"), rounds=2) == 2
