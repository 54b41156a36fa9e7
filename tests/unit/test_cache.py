"""frontend/cache.py BookCache: invalidation, the set-after-invalidate race, versions, TTL,
and the read lease (design §7 rule 7): fresh only under the lease it was stored under,
version floors, and the last known value for max-stale."""

import math
import random
import threading

from common.lease.clock import FakeClock
from common.lease.reads import ReadLease
from frontend.cache import BookCache

DRIFT = 0.25  # max_drift, large so that the arithmetic below stays round
LEASE = 2.0  # seconds granted; trusted for LEASE x (1 - DRIFT)


def book(book_id, version=1, cost=50.0):
    return {"id": book_id, "title": f"book {book_id}", "cost": cost, "version": version}


def hit(book_id):
    return {"id": book_id, "title": f"book {book_id}"}


def make_cache(ttl=60.0, leased=True):
    """A cache on a fake clock, holding a read lease of epoch 1 unless `leased` is False."""
    cache = BookCache(size=100, ttl=ttl, lease=ReadLease(FakeClock(), DRIFT))
    if leased:
        renew(cache)
    return cache


def renew(cache, epoch=1):
    return cache.grant(epoch, {**cache.lease.stamp(), "length": LEASE})


# -- books ---------------------------------------------------------------------


def test_get_of_unknown_book_is_none():
    assert make_cache().get(1) is None


def test_put_then_get():
    cache = make_cache()
    assert cache.put(book(1), cache.ticket()) is True
    assert cache.get(1) == book(1)


def test_tickets_increase():
    cache = make_cache()
    first = cache.ticket()
    assert cache.ticket() > first


def test_invalidate_drops_the_book():
    cache = make_cache()
    cache.put(book(1), cache.ticket())
    cache.invalidate(1)
    assert cache.get(1) is None


def test_put_with_ticket_taken_before_invalidate_is_refused():
    cache = make_cache()
    ticket = cache.ticket()  # refill starts reading from the catalog...
    cache.invalidate(1)  # ...a write lands meanwhile
    assert cache.put(book(1, version=1), ticket) is False
    assert cache.get(1) is None


def test_put_with_ticket_taken_after_invalidate_is_accepted():
    cache = make_cache()
    cache.invalidate(1)
    ticket = cache.ticket()
    assert cache.put(book(1, version=2), ticket) is True
    assert cache.get(1) == book(1, version=2)


def test_invalidating_another_book_does_not_refuse_a_put():
    cache = make_cache()
    ticket = cache.ticket()
    cache.invalidate(2)
    assert cache.put(book(1), ticket) is True


def test_older_version_never_replaces_newer():
    cache = make_cache()
    cache.put(book(1, version=5, cost=60.0), cache.ticket())
    assert cache.put(book(1, version=4, cost=50.0), cache.ticket()) is False
    assert cache.get(1)["version"] == 5


def test_newer_version_replaces_older():
    cache = make_cache()
    cache.put(book(1, version=4), cache.ticket())
    assert cache.put(book(1, version=5, cost=60.0), cache.ticket()) is True
    assert cache.get(1) == book(1, version=5, cost=60.0)


def test_clear_drops_everything():
    cache = make_cache()
    cache.put(book(1), cache.ticket())
    cache.put_search(SPRING, page(7), cache.ticket())
    cache.clear()
    assert cache.get(1) is None
    assert cache.get_search(SPRING) is None


# -- search pages ----------------------------------------------------------------
def key(topic, limit=100, after=None):
    """A topic page's key: (route, query, limit, after)."""
    return ("topic", topic, limit, after)


def page(*ids, cursor=None):
    return {"entries": [hit(i) for i in ids], "next": cursor}


SPRING = key("spring")
DS = key("distributed systems")


def test_put_search_then_get_search():
    cache = make_cache()
    assert cache.put_search(SPRING, page(7), cache.ticket()) is True
    assert cache.get_search(SPRING) == page(7)


def test_pages_of_one_search_are_kept_apart_by_limit_and_cursor():
    cache = make_cache()
    cache.put_search(DS, page(1, 2, cursor="Wzld"), cache.ticket())
    cache.put_search(key("distributed systems", 100, "Wzld"), page(3), cache.ticket())
    cache.put_search(key("distributed systems", 1), page(1, cursor="WzFd"), cache.ticket())
    assert cache.get_search(DS) == page(1, 2, cursor="Wzld")
    assert cache.get_search(key("distributed systems", 100, "Wzld")) == page(3)
    assert cache.get_search(key("distributed systems", 1)) == page(1, cursor="WzFd")
    assert cache.get_search(key("distributed systems", 2)) is None


def test_a_price_or_stock_change_leaves_search_pages_alone():
    cache = make_cache()
    cache.put_search(DS, page(1, 2), cache.ticket())
    ticket = cache.ticket()
    cache.invalidate(2, version=5)  # a price, a buy: the page shows neither
    assert cache.get_search(DS) == page(1, 2)
    assert cache.put_search(SPRING, page(7), ticket) is True


def test_a_listing_change_drops_every_search_page():
    cache = make_cache()
    ticket = cache.ticket()
    cache.put_search(DS, page(1, 2), ticket)
    cache.put_search(("words", "spring", 100, None), page(7), ticket)
    cache.invalidate_searches()
    assert cache.get_search(DS) is None
    assert cache.get_search(("words", "spring", 100, None)) is None


def test_a_page_read_before_a_listing_change_is_not_stored():
    cache = make_cache()
    ticket = cache.ticket()
    cache.invalidate_searches()
    assert cache.put_search(DS, page(1, 2), ticket) is False
    assert cache.get_search(DS) is None
    assert cache.put_search(DS, page(1, 2), cache.ticket()) is True


# -- TTL -----------------------------------------------------------------------


def test_entries_live_until_the_ttl():
    cache = make_cache(ttl=1.0)
    cache.put(book(1), cache.ticket())
    cache.put_search(SPRING, page(7), cache.ticket())
    cache.clock.advance(0.9)
    assert cache.get(1) == book(1)
    assert cache.get_search(SPRING) == page(7)


def test_entries_expire_after_the_ttl():
    cache = make_cache(ttl=1.0)
    cache.put(book(1), cache.ticket())
    cache.put_search(SPRING, page(7), cache.ticket())
    cache.clock.advance(1.1)
    renew(cache)  # the lease still holds: only the TTL drops them
    assert cache.get(1) is None
    assert cache.get_search(SPRING) is None
    assert cache.stale(1, math.inf) is None  # gone, not merely stale


# -- threads -------------------------------------------------------------------


def test_concurrent_put_get_invalidate_do_not_raise():
    cache = BookCache(size=50, ttl=60.0, lease=ReadLease(FakeClock(), DRIFT))
    renew(cache)
    failures = []

    def worker(seed):
        rng = random.Random(seed)
        try:
            for i in range(2000):
                book_id = rng.randint(1, 20)
                action = rng.random()
                if action < 0.4:
                    cache.put(book(book_id, version=i), cache.ticket())
                elif action < 0.6:
                    cache.put_search(key(f"topic {book_id % 5}"), page(book_id), cache.ticket())
                elif action < 0.8:
                    cache.get(book_id)
                    cache.get_search(key(f"topic {book_id % 5}"))
                    cache.stale(book_id, 1.0)
                elif action < 0.98:
                    cache.invalidate(book_id, version=i)
                else:
                    renew(cache, epoch=1 + i // 1000)
        except Exception as e:  # any exception is the failure we look for
            failures.append(e)

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    assert failures == []


# -- the read lease ------------------------------------------------------------

TRUSTED = LEASE * (1 - DRIFT)  # how long a grant is trusted on the copy's clock


def test_without_a_lease_nothing_is_stored_or_hit():
    cache = make_cache(leased=False)
    assert cache.put(book(1), cache.ticket()) is False
    assert cache.put_search(SPRING, page(7), cache.ticket()) is False
    assert cache.get(1) is None


def test_a_hit_is_served_only_while_the_lease_is_valid():
    cache = make_cache()
    cache.put(book(1), cache.ticket())
    cache.clock.advance(TRUSTED - 0.1)
    assert cache.get(1) == book(1)
    cache.clock.advance(0.2)
    assert cache.get(1) is None


def test_a_renewal_before_the_lease_runs_out_keeps_entries_fresh():
    cache = make_cache()
    cache.put(book(1), cache.ticket())
    cache.clock.advance(TRUSTED - 0.1)
    assert renew(cache) is False  # no lapse
    cache.clock.advance(TRUSTED - 0.1)
    assert cache.get(1) == book(1)


def test_a_lapse_makes_everything_cached_before_it_stale_for_good():
    cache = make_cache()
    cache.put(book(1), cache.ticket())
    cache.put_search(SPRING, page(7), cache.ticket())
    cache.clock.advance(TRUSTED + 0.1)
    assert renew(cache) is True  # the grant follows a lapse
    assert cache.get(1) is None
    assert cache.get_search(SPRING) is None
    assert cache.put(book(1), cache.ticket()) is True  # refills under the new lease count
    assert cache.get(1) == book(1)


def test_a_newer_epoch_makes_old_entries_stale():
    cache = make_cache()
    cache.put(book(1), cache.ticket())
    assert renew(cache, epoch=2) is True
    assert cache.get(1) is None


def test_seeing_a_newer_epoch_ends_the_lease_at_once():
    cache = make_cache()
    cache.put(book(1), cache.ticket())
    cache.observe_epoch(2)
    assert cache.lease_state()["valid"] is False
    assert cache.get(1) is None


def test_a_grant_from_an_older_epoch_is_ignored():
    cache = make_cache()
    renew(cache, epoch=3)
    assert renew(cache, epoch=2) is False
    assert cache.lease_state()["epoch"] == 3


def test_a_grant_is_trusted_for_at_most_our_own_read_lease():
    clock = FakeClock()
    cache = BookCache(size=10, ttl=60.0, lease=ReadLease(clock, DRIFT, longest=2.5))
    cache.grant(1, {**cache.lease.stamp(), "length": 3600})
    assert cache.lease_state() == {"epoch": 1, "valid": True, "remaining": 2.5 * (1 - DRIFT)}


def test_a_lease_change_between_ticket_and_put_blocks_the_put():
    cache = make_cache()
    ticket = cache.ticket()  # a refill starts reading...
    cache.clock.advance(TRUSTED + 0.1)
    renew(cache)  # ...the lease lapses and comes back: writes may have been missed
    assert cache.put(book(1), ticket) is False
    assert cache.put_search(SPRING, page(7), ticket) is False


def test_a_put_after_the_lease_ran_out_is_refused():
    cache = make_cache()
    ticket = cache.ticket()
    cache.clock.advance(TRUSTED + 0.1)
    assert cache.put(book(1), ticket) is False


def test_the_ticket_rule_still_holds_under_a_lease():
    cache = make_cache()
    ticket = cache.ticket()
    cache.invalidate(1)
    assert cache.put(book(1, version=9), ticket) is False


# -- version floors --------------------------------------------------------------


def test_a_floor_blocks_an_older_refill_even_with_a_later_ticket():
    cache = make_cache()
    cache.invalidate(1, version=5, epoch=1)
    ticket = cache.ticket()  # the replica read may still predate the push of version 5
    assert cache.put(book(1, version=4), ticket) is False
    assert cache.behind(book(1, version=4), ticket) is True
    assert cache.put(book(1, version=5), ticket) is True
    assert cache.behind(book(1, version=5), ticket) is False


def test_the_floor_is_the_highest_version_announced():
    cache = make_cache()
    cache.invalidate(1, version=5, epoch=1)
    cache.invalidate(1, version=3, epoch=1)
    assert cache.floor(1) == 5
    assert cache.floor(2) == 0


def test_a_floor_of_an_older_epoch_binds_only_reads_that_started_in_it():
    cache = make_cache()
    cache.invalidate(1, version=6, epoch=1)  # maybe never acknowledged: its primary died
    before = cache.ticket()
    renew(cache, epoch=2)
    after = cache.ticket()
    assert cache.behind(book(1, version=5), before) is True
    assert cache.behind(book(1, version=5), after) is False
    assert cache.put(book(1, version=5), after) is True


# -- stale answers (max-stale) ---------------------------------------------------


def test_an_invalidated_book_is_kept_for_clients_that_accept_staleness():
    cache = make_cache()
    cache.put(book(1), cache.ticket())
    cache.clock.advance(3)
    cache.invalidate(1)
    cache.clock.advance(1)
    assert cache.get(1) is None
    assert cache.stale(1, None) is None  # the client did not ask
    assert cache.stale(1, 0.5) is None  # stale for 1 s
    answer = cache.stale(1, 1)
    assert answer.value == book(1)
    assert answer.age == 4  # since it was fetched, not since it went stale
    assert cache.stale(1, math.inf).age == 4
    assert cache.stats()["stale_served"] == 2


def test_a_lapsed_entry_is_stale_since_the_lease_ended():
    cache = make_cache()
    cache.put(book(1), cache.ticket())
    cache.clock.advance(TRUSTED + 2)
    assert cache.stale(1, 1.9) is None
    assert cache.stale(1, 2).age == math.floor(TRUSTED + 2)
    renew(cache)  # after the lapse the entry stays stale since the same moment
    cache.clock.advance(1)
    assert cache.stale(1, 2.9) is None
    assert cache.stale(1, 3) is not None


def test_a_fresh_entry_asked_for_as_stale_comes_without_age():
    cache = make_cache()
    cache.put(book(1), cache.ticket())
    answer = cache.stale(1, 10)
    assert (answer.value, answer.age) == (book(1), None)
    assert cache.stats()["stale_served"] == 0


def test_a_stale_search_answer_is_kept_too():
    cache = make_cache()
    cache.put_search(SPRING, page(7), cache.ticket())
    cache.invalidate_searches()
    cache.clock.advance(2)
    assert cache.get_search(SPRING) is None
    assert cache.stale_search(SPRING, 5).value == page(7)
    assert cache.stale_search(SPRING, 1) is None


def test_a_refill_replaces_a_stale_copy_of_a_newer_version():
    cache = make_cache()
    cache.put(book(1, version=5), cache.ticket())
    cache.clock.advance(TRUSTED + 0.1)
    renew(cache)
    assert cache.put(book(1, version=4), cache.ticket()) is True


def test_stats_count_lapses_and_stale_answers():
    cache = make_cache()
    stats = cache.stats()
    assert {"stale_served", "lapses", "hits", "misses", "size"} <= set(stats)
    assert stats["lapses"] == 1  # the first grant follows "never held"
    cache.clock.advance(TRUSTED + 0.1)
    renew(cache)
    assert cache.stats()["lapses"] == 2


# -- coalescing ------------------------------------------------------------------


def test_fetches_are_shared_only_under_a_lease():
    cache = make_cache(leased=False)
    assert cache.coalesce(("book", 1), lambda: "fetched") == "fetched"
    assert cache.flights.leaders == 0  # run alone: nobody may join it
    renew(cache)
    assert cache.coalesce(("book", 1), lambda: "fetched") == "fetched"
    assert cache.flights.leaders == 1


def test_a_caller_under_a_new_lease_does_not_join_a_flight_of_the_old_one():
    cache = make_cache()
    started, release = threading.Event(), threading.Event()

    def slow():
        started.set()
        release.wait(5)
        return "old"

    leader = threading.Thread(target=cache.coalesce, args=(("book", 1), slow))
    leader.start()
    started.wait(5)
    cache.clock.advance(TRUSTED + 0.1)
    renew(cache)  # lapse: writes may have been acknowledged without us
    assert cache.coalesce(("book", 1), lambda: "new") == "new"
    release.set()
    leader.join(5)
