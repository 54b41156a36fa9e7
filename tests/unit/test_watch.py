"""common/ops/watch.py: the foreground display's change detector, without processes."""

from common.ops.watch import DOWN, NO_ANSWER, Change, Detector, Seen, describe, seen

UP = Seen("up")


def test_seen_tells_a_silent_process_from_no_process():
    assert seen(True, "down", {}) == Seen(NO_ANSWER)
    assert seen(False, "down", {}) == Seen(DOWN)
    assert seen(True, "up", {"role": "primary"}) == Seen("up", "primary")
    assert seen(True, "recovering", {"status": "recovering"}) == Seen("recovering")


def test_a_start_reads_started_recovering_healthy_and_then_nothing():
    d = Detector()
    assert d.update({"c1": Seen(NO_ANSWER), "o1": Seen(NO_ANSWER)}) == [
        Change("c1", "started"),
        Change("o1", "started"),
    ]
    assert d.update({"c1": Seen(NO_ANSWER), "o1": Seen(NO_ANSWER)}) == []
    assert d.update({"c1": Seen("stale", "backup")}) == [Change("c1", "stale (backup)")]
    assert d.update({"c1": Seen("recovering")}) == [Change("c1", "recovering")]
    assert d.update({"c1": Seen("up", "primary"), "o1": UP}) == [
        Change("c1", "healthy (primary)"),
        Change("o1", "healthy"),
    ]
    assert d.update({"c1": Seen("up", "primary"), "o1": UP}) == []


def test_a_killed_node_is_down_and_its_return_is_back():
    d = Detector()
    d.update({"o1": UP, "o2": UP})
    assert d.update({"o1": Seen(NO_ANSWER), "o2": UP}) == []  # dying: wait and see
    assert d.update({"o1": Seen(DOWN), "o2": UP}) == [Change("o1", "down")]
    assert d.update({"o1": Seen(DOWN)}) == []
    assert d.update({"o1": Seen(NO_ANSWER)}) == [Change("o1", "started")]
    assert d.update({"o1": Seen("recovering")}) == [Change("o1", "recovering")]
    assert d.update({"o1": UP}) == [Change("o1", "back")]
    assert d.update({"o1": Seen("stale")}) == [Change("o1", "stale")]
    assert d.update({"o1": UP}) == [Change("o1", "healthy")]  # it never went away


def test_a_hung_node_is_not_answering_then_back():
    d = Detector()
    d.update({"c2": Seen("up", "backup")})
    assert d.update({"c2": Seen(NO_ANSWER)}) == []
    assert d.update({"c2": Seen(NO_ANSWER)}) == [Change("c2", "not answering")]
    assert d.update({"c2": Seen(NO_ANSWER)}) == []
    assert d.update({"c2": Seen("up", "backup")}) == [Change("c2", "back (backup)")]


def test_a_new_role_alone_is_a_change():
    d = Detector()
    d.update({"c2": Seen("up", "backup")})
    assert d.update({"c2": Seen("up", "primary")}) == [Change("c2", "now primary")]


def test_a_node_down_from_the_first_look_is_down():
    assert describe(None, Seen(DOWN)) == "down"
    assert describe(None, UP) == "healthy"
    assert describe(UP, UP) is None


def test_one_silent_look_between_answers_is_no_change():
    d = Detector()
    d.update({"f1": UP})
    assert d.update({"f1": Seen(NO_ANSWER)}) == []
    assert d.update({"f1": UP}) == []
    assert d.update({"f1": Seen(NO_ANSWER)}) == []  # the count starts again
    assert d.update({"f1": Seen(NO_ANSWER)}) == [Change("f1", "not answering")]


def test_a_node_healthy_at_its_first_answer_after_up_still_reads_started():
    """`bazar up` in the foreground: a quick node answers 200 at its first look (CI saw
    the front-end do so); its line "started" comes first all the same."""
    from types import SimpleNamespace

    from common.ops.watch import Display

    lines = []
    display = Display(SimpleNamespace(), out=lines.append, now=lambda: "t")
    display.note(SimpleNamespace(name="f1"), "up", {})
    display.note(SimpleNamespace(name="c1"), "down", {})  # its process runs, no answer yet
    display.note(SimpleNamespace(name="c1"), "up", {"role": "primary"})
    assert lines == ["t  f1           started", "t  f1           healthy",
                     "t  c1           started", "t  c1           healthy (primary)"]  # fmt: skip
