"""frontend/cache.py BookCache: invalidation, the set-after-invalidate race, versions, TTL."""

import random
import threading
import time

from frontend.cache import BookCache


def book(book_id, version=1, cost=50.0):
    return {"id": book_id, "title": f"book {book_id}", "cost": cost, "version": version}


def hit(book_id):
    return {"id": book_id, "title": f"book {book_id}"}


def make_cache(ttl=60.0):
    return BookCache(size=100, ttl=ttl)


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
    cache.put_search("spring", [hit(7)], cache.ticket())
    cache.clear()
    assert cache.get(1) is None
    assert cache.get_search("spring") is None


# -- searches ------------------------------------------------------------------


def test_put_search_then_get_search():
    cache = make_cache()
    assert cache.put_search("spring", [hit(7)], cache.ticket()) is True
    assert cache.get_search("spring") == [hit(7)]


def test_search_topic_is_case_insensitive():
    cache = make_cache()
    cache.put_search("Distributed Systems", [hit(1), hit(2)], cache.ticket())
    assert cache.get_search("distributed SYSTEMS") == [hit(1), hit(2)]


def test_invalidate_drops_searches_listing_the_book_only():
    cache = make_cache()
    ticket = cache.ticket()
    cache.put_search("distributed systems", [hit(1), hit(2)], ticket)
    cache.put_search("spring", [hit(7)], ticket)
    cache.invalidate(2)
    assert cache.get_search("distributed systems") is None
    assert cache.get_search("spring") == [hit(7)]


def test_put_search_with_ticket_before_invalidate_of_a_hit_is_refused():
    cache = make_cache()
    ticket = cache.ticket()
    cache.invalidate(2)
    assert cache.put_search("distributed systems", [hit(1), hit(2)], ticket) is False
    assert cache.get_search("distributed systems") is None


def test_put_search_unaffected_by_invalidate_of_unlisted_book():
    cache = make_cache()
    ticket = cache.ticket()
    cache.invalidate(3)
    assert cache.put_search("distributed systems", [hit(1), hit(2)], ticket) is True


# -- TTL -----------------------------------------------------------------------


def test_entries_live_until_the_ttl():
    cache = make_cache(ttl=60.0)
    cache.put(book(1), cache.ticket())
    cache.put_search("spring", [hit(7)], cache.ticket())
    time.sleep(0.06)
    assert cache.get(1) == book(1)
    assert cache.get_search("spring") == [hit(7)]


def test_entries_expire_after_the_ttl():
    cache = make_cache(ttl=0.05)
    cache.put(book(1), cache.ticket())
    cache.put_search("spring", [hit(7)], cache.ticket())
    time.sleep(0.12)
    assert cache.get(1) is None
    assert cache.get_search("spring") is None


# -- threads -------------------------------------------------------------------


def test_concurrent_put_get_invalidate_do_not_raise():
    cache = BookCache(size=50, ttl=60.0)
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
                    cache.put_search(f"topic {book_id % 5}", [hit(book_id)], cache.ticket())
                elif action < 0.8:
                    cache.get(book_id)
                    cache.get_search(f"topic {book_id % 5}")
                else:
                    cache.invalidate(book_id)
        except Exception as e:  # any exception is the failure we look for
            failures.append(e)

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    assert failures == []
