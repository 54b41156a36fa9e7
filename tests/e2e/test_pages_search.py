"""Pages and word search through the front-end (docs/scale.md §1-§3), on the shared
cluster: every page of a topic walked once, the page rules and their 400s, word
search's ranking and its hostile input, and a withdrawn or renamed book gone from
every search at once, on every replica and through the cache."""

from __future__ import annotations

import base64
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support.cluster import assert_error

MANY = 250


@pytest.fixture(scope="module")
def cluster(shared_cluster):
    return shared_cluster


def tag() -> str:
    return uuid.uuid4().hex[:10]


def walk(api, path: str, params: dict, headers=None) -> list[list[dict]]:
    """Every page of a list, following Link rel=next; the pages as they came."""
    response = api.get(path, params=params, headers=headers)
    pages = []
    while True:
        assert response.status_code == 200, response.text
        pages.append(response.json())
        if "next" not in response.links:
            return pages
        response = api.http.get(response.links["next"]["url"], headers=headers, timeout=30)


def catalog_words(cluster, q: str) -> dict[str, list[int]]:
    """Each catalog's word search for `q` (signed, as a front-end asks), ids in order."""
    found = {}
    for name in cluster.names("catalog"):
        response = cluster.call(name, "GET", "/search", params={"q": q, "limit": 1000})
        assert response.status_code == 200, response.text
        found[name] = [hit["id"] for hit in response.json()["entries"]]
    return found


def catalog_topic(cluster, topic: str) -> dict[str, list[int]]:
    found = {}
    for name in cluster.names("catalog"):
        response = cluster.call(name, "GET", f"/search/{topic}", params={"limit": 1000})
        assert response.status_code == 200, response.text
        found[name] = [hit["id"] for hit in response.json()["entries"]]
    return found


@pytest.fixture(scope="module")
def many(shop) -> tuple[str, list[int]]:
    """MANY books under one topic of their own, made through POST /books."""
    topic = f"pages {tag()}"

    def add(i: int) -> int:
        return shop.new_book(title=f"Volume {i}", topic=topic)["id"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(add, range(MANY)))
    return topic, sorted(ids)


# -- pages ------------------------------------------------------------------------------
@pytest.mark.parametrize("limit", [100, 7, 1000])
def test_walking_a_topic_gives_every_book_once_in_id_order(cluster, many, limit):
    topic, ids = many
    pages = walk(cluster.api, f"/search/{topic}", {"limit": limit})
    walked = [hit["id"] for page in pages for hit in page]
    assert walked == ids
    assert [len(page) for page in pages[:-1]] == [limit] * (len(pages) - 1)
    assert 0 < len(pages[-1]) <= limit
    assert all(set(hit) == {"id", "title"} for page in pages for hit in page)


def test_the_link_keeps_the_other_parameters_and_the_last_page_has_none(cluster, many):
    topic, ids = many
    first = cluster.api.get(f"/search/{topic}", params={"limit": 200})
    link = first.links["next"]["url"]
    assert "limit=200" in link and "after=" in link
    assert link.startswith(cluster.api.url + "/search/")
    last = cluster.api.http.get(link, timeout=30)
    assert [hit["id"] for hit in last.json()] == ids[200:]
    assert "Link" not in last.headers
    whole = cluster.api.get(f"/search/{topic}", params={"limit": 1000})
    assert len(whole.json()) == MANY and "Link" not in whole.headers


def test_the_default_page_is_100(cluster, many):
    topic, ids = many
    response = cluster.api.search(topic)
    assert [hit["id"] for hit in response.json()] == ids[:100]
    assert "next" in response.links


@pytest.mark.parametrize("limit", ["0", "1001", "-1", "ten", "1.5", "", "99999999999999999999"])
@pytest.mark.parametrize("path", ["/search/spring", "/search?q=spring", "/books"])
def test_a_limit_out_of_bounds_is_a_400(cluster, shop, path, limit):
    sep = "&" if "?" in path else "?"
    response = cluster.api.get(f"{path}{sep}limit={limit}", headers=shop.staff_headers())
    assert_error(response, 400, "limit")


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


BAD_CURSORS = ["x", "%%", b64("[1"), b64('{"a":1}'), b64('["1"]'), b64("[-5]"), "A" * 300]


@pytest.mark.parametrize("after", BAD_CURSORS)
@pytest.mark.parametrize("path", ["/search/spring", "/search?q=spring", "/books", "/audit"])
def test_a_cursor_we_did_not_make_is_a_400(cluster, shop, path, after):
    sep = "&" if "?" in path else "?"
    response = cluster.api.get(f"{path}{sep}after={after}", headers=shop.staff_headers())
    assert_error(response, 400, "after")


def test_a_catalog_asked_without_pages_answers_the_whole_list_as_before(cluster, many):
    """What a front-end of the previous release asks during a roll (docs/upgrading.md)."""
    topic, ids = many
    catalog = cluster.names("catalog")[0]
    whole = cluster.call(catalog, "GET", f"/search/{topic}")
    assert [hit["id"] for hit in whole.json()] == ids
    paged = cluster.call(catalog, "GET", f"/search/{topic}", params={"limit": 5}).json()
    assert [hit["id"] for hit in paged["entries"]] == ids[:5] and paged["next"]
    books = cluster.call(catalog, "GET", "/books", params={"deleted": "any"}).json()
    assert isinstance(books, list) and set(ids) <= {book["id"] for book in books}


def test_a_topic_cursor_is_not_a_word_search_cursor(cluster, many):
    topic, _ = many
    link = cluster.api.get(f"/search/{topic}", params={"limit": 5}).links["next"]["url"]
    cursor = link.rpartition("after=")[2]
    assert_error(cluster.api.get("/search", params={"q": "volume", "after": cursor}), 400, "after")


def test_staff_books_come_in_pages_and_the_export_holds_every_row(cluster, shop, many):
    _, ids = many
    headers = shop.staff_headers()
    pages = walk(cluster.api, "/books", {"limit": 60, "deleted": "false"}, headers)
    listed = [book["id"] for page in pages for book in page]
    assert listed == sorted(listed) and set(ids) <= set(listed)
    assert all(len(page) == 60 for page in pages[:-1])
    export = shop.export()
    assert export.status_code == 200 and export.headers["Content-Type"].startswith("text/csv")
    exported = [int(line.split(",")[0]) for line in export.text.splitlines()[1:]]
    assert set(ids) <= set(exported) and exported == sorted(exported)
    assert len(exported) == len(set(exported)) >= len(listed)


# -- word search ------------------------------------------------------------------------
def test_a_title_hit_comes_before_a_topic_only_hit(cluster, shop):
    word = f"zq{tag()}"
    in_topic = shop.new_book(title="Plain Title", topic=f"{word} studies")
    in_title = shop.new_book(title=f"The {word} Book", topic="other")
    response = cluster.api.get("/search", params={"q": word})
    assert response.status_code == 200, response.text
    assert [hit["id"] for hit in response.json()] == [in_title["id"], in_topic["id"]]
    assert response.json()[0] == {"id": in_title["id"], "title": in_title["title"],
                                  "topic": "other"}  # fmt: skip


def test_words_are_prefixes_accents_aside_and_all_needed(cluster, shop):
    word = f"qx{tag()}"
    book = shop.new_book(title=f"Crème brûlée {word}distributed", topic="Desserts")
    for q in (f"{word}dis", f"CREME {word}", f"brulee {word}", f"crème {word}", f"{word} dessert"):
        response = cluster.api.get("/search", params={"q": q})
        assert [hit["id"] for hit in response.json()] == [book["id"]], q
    assert cluster.api.get("/search", params={"q": f"{word} pudding"}).json() == []


@pytest.mark.parametrize(
    "q", ['"', '""', "*", "dos*", "NEAR(dos rpc)", "dos OR rpc", "-dos", "dos NOT rpc",
          "title:dos", "(dos", "^", '"dos" AND', "{title topic}: dos", "%", "'; --", "\\"],
)  # fmt: skip
def test_fts5_syntax_is_never_read_from_q(cluster, q):
    response = cluster.api.get("/search", params={"q": q})
    assert response.status_code in (200, 400), response.text
    assert response.headers["Content-Type"].startswith("application/json")
    if response.status_code == 200:
        assert isinstance(response.json(), list)


@pytest.mark.parametrize("q", [None, "", "   ", "!!!", "x" * 201])
def test_q_without_a_word_is_a_400(cluster, q):
    params = {} if q is None else {"q": q}
    assert_error(cluster.api.get("/search", params=params), 400, "q")


def test_no_match_is_an_empty_list_and_seed_books_are_found(cluster):
    assert cluster.api.get("/search", params={"q": f"nothing{tag()}"}).json() == []
    found = cluster.api.get("/search", params={"q": "dos"}).json()
    assert 1 in [hit["id"] for hit in found]


def test_word_search_pages_walk_every_hit_once(cluster, many):
    topic, ids = many
    q = topic.split()[1]  # the topic's own tag: every one of them, and no other book
    pages = walk(cluster.api, "/search", {"q": q, "limit": 40})
    walked = [hit["id"] for page in pages for hit in page]
    assert sorted(walked) == ids and len(walked) == len(set(walked))
    whole = cluster.api.get("/search", params={"q": q, "limit": 1000}).json()
    assert [hit["id"] for hit in whole] == walked


# -- changes show at once, everywhere -----------------------------------------------------
def test_a_withdrawn_book_leaves_every_search_at_once(cluster, shop):
    word = f"wd{tag()}"
    topic = f"withdrawn {word}"
    gone, kept = shop.new_book(title=f"{word} one", topic=topic), shop.new_book(topic=topic)
    for _ in range(2):  # the second read is the cache's
        assert len(cluster.api.search(topic).json()) == 2
        assert [h["id"] for h in cluster.api.get("/search", params={"q": word}).json()] == [
            gone["id"], kept["id"]]  # fmt: skip
    assert shop.withdraw(gone["id"], "pulped").status_code == 200
    assert [h["id"] for h in cluster.api.search(topic).json()] == [kept["id"]]
    assert [h["id"] for h in cluster.api.get("/search", params={"q": word}).json()] == [kept["id"]]
    assert all(ids == [kept["id"]] for ids in catalog_words(cluster, word).values())
    assert all(ids == [kept["id"]] for ids in catalog_topic(cluster, topic).values())
    assert shop.restore(gone["id"]).status_code == 200
    assert len(cluster.api.search(topic).json()) == 2
    assert all(len(ids) == 2 for ids in catalog_words(cluster, word).values())


def test_a_renamed_book_is_found_by_its_new_title_only_at_once(cluster, shop):
    old, new = f"old{tag()}", f"new{tag()}"
    book = shop.new_book(title=f"The {old} Story")
    topic = book["topic"]
    for _ in range(2):
        assert cluster.api.get("/search", params={"q": old}).json()[0]["id"] == book["id"]
        assert cluster.api.search(topic).json()[0]["title"] == book["title"]
    assert shop.edit(book["id"], {"title": f"The {new} Story"}).status_code == 200
    assert cluster.api.get("/search", params={"q": old}).json() == []
    assert [h["title"] for h in cluster.api.search(topic).json()] == [f"The {new} Story"]
    for name, ids in catalog_words(cluster, new).items():
        assert ids == [book["id"]], name
    assert all(ids == [] for ids in catalog_words(cluster, old).values())


def test_a_price_change_keeps_cached_pages_and_a_listing_change_drops_them(cluster, shop):
    book = shop.new_book(cost=10.0)
    topic, page = book["topic"], [{"id": book["id"], "title": book["title"]}]
    assert cluster.api.search(topic).json() == page  # read, and cached
    assert cluster.api.search(topic).json() == page
    before = catalog_reads(cluster)
    assert cluster.api.set_price(book["id"], 11.0).status_code == 200
    assert cluster.api.search(topic).json() == page
    assert catalog_reads(cluster) == before  # answered from the cache
    shop.new_book()  # any book added: every page may list differently now
    assert cluster.api.search(topic).json() == page
    assert catalog_reads(cluster) == before + 1


def catalog_reads(cluster) -> int:
    """Reads the catalogs served, all of them (a search the cache answers adds none)."""
    return sum(cluster.call(n, "GET", "/health").json()["reads"] for n in cluster.names("catalog"))


def test_replicas_agree_on_word_search(cluster, many):
    topic, ids = many
    found = catalog_words(cluster, topic.split()[1])
    assert len(found) >= 2 and all(sorted(v) == ids for v in found.values())
    assert len({tuple(v) for v in found.values()}) == 1  # the same ranks, the same order
