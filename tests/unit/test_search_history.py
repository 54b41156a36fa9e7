"""tests/support/search_history.py fed good and bad histories: a withdrawn or renamed
book shown after the change was acknowledged is stale, one left out while listed is
missing, and a change in flight (or of unknown outcome) may show either way."""

from __future__ import annotations

from tests.support.search_history import Change, Search, SearchHistory, matches, stale_searches

TOPIC = "searchable r1"


def history(changes=(), searches=()) -> SearchHistory:
    h = SearchHistory(topic=TOPIC, initial={1: "b1 ed0x tale", 2: "b2 ed0x tale"})
    h.changes += list(changes)
    h.searches += list(searches)
    return h


def change(book, attribute, value, started, ended, acked=True):
    return Change(book, attribute, value, started, ended, acked)


def search(shown, started, ended=None, kind="topic", query=TOPIC):
    return Search(kind, query, shown, started, ended or started + 0.1, "fe cache")


BOTH = {1: "b1 ed0x tale", 2: "b2 ed0x tale"}


def test_answers_as_the_books_are_pass():
    assert stale_searches(history(searches=[search(BOTH, 1.0)])) == []
    words = search({1: "b1 ed0x tale"}, 1.0, kind="words", query="b1 ed0")
    assert stale_searches(history(searches=[words])) == []


def test_a_book_withdrawn_before_the_search_began_must_not_show():
    withdrawn = change(1, "listed", False, 1.0, 2.0)
    problems = stale_searches(history([withdrawn], [search(BOTH, 2.5)]))
    assert len(problems) == 1 and "withdrawn before the search began" in problems[0]
    assert stale_searches(history([withdrawn], [search({2: BOTH[2]}, 2.5)])) == []


def test_while_a_withdraw_is_in_flight_either_answer_is_right():
    withdrawn = change(1, "listed", False, 1.0, 2.0)
    for shown in (BOTH, {2: BOTH[2]}):
        assert stale_searches(history([withdrawn], [search(shown, 1.5)])) == []


def test_an_unknown_outcome_may_have_happened_or_not():
    maybe = change(1, "listed", False, 1.0, 2.0, acked=False)
    for shown in (BOTH, {2: BOTH[2]}):
        assert stale_searches(history([maybe], [search(shown, 3.0)])) == []


def test_a_renamed_book_must_not_show_its_old_title():
    renamed = change(2, "title", "b2 ed1x tale", 1.0, 2.0)
    problems = stale_searches(history([renamed], [search(BOTH, 2.5)]))
    assert len(problems) == 1 and "'b2 ed0x tale'" in problems[0]
    old_words = search({2: "b2 ed0x tale"}, 2.5, kind="words", query="b2 ed0")
    assert len(stale_searches(history([renamed], [old_words]))) == 1
    gone = search({}, 2.5, kind="words", query="b2 ed0")
    assert stale_searches(history([renamed], [gone])) == []


def test_a_listed_book_left_out_is_missing():
    problems = stale_searches(history(searches=[search({1: BOTH[1]}, 1.0)]))
    assert len(problems) == 1 and "left out book 2" in problems[0]
    words = search({}, 1.0, kind="words", query="b2")
    assert "left out book 2" in stale_searches(history(searches=[words]))[0]


def test_a_book_restored_must_show_again():
    out = change(1, "listed", False, 1.0, 2.0)
    back = change(1, "listed", True, 3.0, 4.0)
    assert stale_searches(history([out, back], [search(BOTH, 4.5)])) == []
    problems = stale_searches(history([out, back], [search({2: BOTH[2]}, 4.5)]))
    assert "left out book 1" in problems[0]


def test_a_title_nobody_set_is_caught():
    problems = stale_searches(history(searches=[search({1: "b1 ed7x tale", 2: BOTH[2]}, 1.0)]))
    assert "could only be one of" in problems[0]


def test_matching_is_word_prefixes_of_title_and_topic():
    assert matches("b1 ed0", "b1 ed0x tale", TOPIC)
    assert matches("r1", "b1 ed0x tale", TOPIC)
    assert not matches("b1 ed1", "b1 ed0x tale", TOPIC)
    assert not matches("ed0x b2", "b1 ed0x tale", TOPIC)
