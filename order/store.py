"""Order domain: ordering through the catalog primary, exactly once per order id.

The order id comes from the client's Idempotency-Key (or is fresh), so a
retry on any order server names the same order. The order is recorded
'pending' first; the catalog's conditional decrement is keyed by that id;
the final status is written with its outbox entry in one transaction and
pushed to the peer order servers before the client hears back. A buy whose
catalog call got no answer stays pending until the reconciler asks the
catalog what happened (design §7 rule 4). An order has 1-50 lines
(`order_items`); a single buy is an order of one line.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine

from common.cluster import NoReplica, Router
from common.lease.fence import EpochFence
from common.node import NodeContext
from common.observe.metrics import ORDER_DECISIONS, ORDERS_FENCED_AFTER_WINDOW
from common.replication.group_call import GroupCall
from common.replication.replicator import Replicator
from common.replication.routes import valid_entries
from common.storage.raw import Raw
from common.web import ApiError
from order import rows, sync
from order.models import CONFIRMED, PENDING, REJECTED
from order.rows import order_items, orders
from order.schemas import OrderEntrySchema

log = logging.getLogger(__name__)
OPEN = sqlite_insert(orders).on_conflict_do_nothing()  # built once (see order.rows)
DECIDE = (
    update(orders)
    .where(orders.c.order_id == bindparam("order"), orders.c.status == PENDING)
    .values(status=bindparam("new_status"), total=bindparam("new_total"))
)
RAW_OPEN, RAW_DECIDE = Raw(OPEN, rows.ORDER_COLUMNS), Raw(DECIDE)  # common.storage.raw


def order_id_for(key: str | None) -> str:
    """Same key, same order id, on every order server."""
    if key is None:
        return uuid.uuid4().hex
    return "k" + hashlib.sha256(key.encode()).hexdigest()[:31]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class OrderStore:
    def __init__(self, ctx: NodeContext, engine: Engine, router: Router):
        self.ctx = ctx
        self.engine = engine
        self.router = router
        self.replicator: Replicator | None = None
        self.fence = EpochFence()  # newest catalog epoch seen in a decision
        self._in_flight: set[str] = set()
        self._flight_lock = threading.Lock()
        self.catalog_calls = GroupCall(self._send_batch, limit=32)

    # -- reads -------------------------------------------------------------
    def get(self, order_id: str) -> dict:
        """An order with its lines (`rows.present` shapes it for clients)."""
        with self.engine.connect() as conn:
            order = rows.find(conn, order_id)
        if order is None:
            raise ApiError(404, f"no order {order_id!r}")
        return order

    # -- ordering --------------------------------------------------------------
    def buy(self, book_id: int, quantity: int, key: str | None, origin: str | None = None) -> dict:
        return self.place([{"book_id": book_id, "quantity": quantity}], key, origin)

    def place(self, lines: list[dict], key: str | None, origin: str | None = None) -> dict:
        """Order every line or none, once per key; returns the decided order."""
        (result,) = self.place_many([{"items": lines, "idempotency_key": key}], origin)
        if isinstance(result, ApiError):
            raise result
        return result

    def place_many(self, wanted: list[dict], origin: str | None = None) -> list[dict | ApiError]:
        """Orders ({items, idempotency_key}) placed together, each with the result it alone
        would get: its decided order, or the ApiError it would raise. All are opened in one
        transaction, decided by the catalog in one batch, recorded in one transaction and
        replicated in one round (py-spy: one order at a time cost twice the statements)."""
        results: list = self._open_all(wanted)
        asking: dict[str, list[int]] = {}  # pending order id -> its places in `wanted`
        for i, opened in enumerate(results):
            if isinstance(opened, ApiError):
                continue
            if opened["status"] == PENDING:
                asking.setdefault(opened["order_id"], []).append(i)
            elif opened["status"] == REJECTED and len(opened["items"]) > 1:
                opened["short"] = self._short_of(opened["order_id"])  # name the same books
        if asking:
            with self._flying(asking):
                pending = {
                    oid: (results[at[0]], wanted[at[0]]["items"]) for oid, at in asking.items()
                }
                decided = self._settle(pending, origin)
            for order_id, places in asking.items():
                for i in places:
                    results[i] = decided[order_id]
        return results

    def _settle(self, pending: dict[str, tuple[dict, list[dict]]], origin: str | None):
        """Ask the catalog about pending orders (id -> (order, lines asked for)) and record
        its verdicts: order id -> the decided order or an ApiError."""
        try:
            answers = self._ask_catalog(pending, origin)
        except ApiError as e:
            return {order_id: _for_order(e, order_id) for order_id in pending}
        results: dict[str, dict | ApiError] = {}
        for order_id, (code, answer) in zip(pending, answers, strict=True):
            if code == 404:
                results[order_id] = ApiError(
                    404, answer.get("message", "no such book"), **_books(answer)
                )
            elif code != 200:
                results[order_id] = ApiError(503, f"catalog answered {code}", order_id=order_id)
            elif not self._current(answer):
                results[order_id] = ApiError(
                    503, "decision from a deposed catalog primary", order_id=order_id
                )
        self._drop_pending([oid for oid, r in results.items() if r.status == 404])
        verdicts = [
            (oid, answer, order)
            for (oid, (order, _)), (_, answer) in zip(pending.items(), answers, strict=True)
            if oid not in results
        ]
        return {**results, **self._decide_all(verdicts)}

    def _ask_catalog(self, pending: dict, origin: str | None) -> list[tuple[int, dict]]:
        """(code, answer) of the catalog primary's decision on each order. Orders placed
        here at the same time travel together and are decided in one transaction."""
        extra = {"origin": origin} if origin else {}
        asks = [{"order_id": oid, "items": lines, **extra} for oid, (_, lines) in pending.items()]
        try:
            return self.catalog_calls.call_many(asks)
        except NoReplica:
            raise ApiError(
                503, "no catalog server reachable; retry with the same Idempotency-Key"
            ) from None

    def _send_batch(self, batch: list[dict]) -> list[tuple[int, dict]]:
        """One request for every order of the batch: each order's (code, answer)."""
        response = self.router.write("catalog", "POST", "/batch/orders", json={"orders": batch})
        if response.status_code != 200:
            return [(response.status_code, {}) for _ in batch]
        return [(answer.pop("code"), answer) for answer in response.json()["results"]]

    def _short_of(self, order_id: str) -> list[int] | None:
        """The books a rejected order was short of, as the catalog decided (the order rows
        do not keep it): read from any catalog replica; None if none can say."""
        try:
            response = self.router.read("catalog", "GET", f"/decisions/{order_id}")
        except NoReplica:
            return None
        if response.status_code != 200:
            return None
        return response.json().get("short") or None

    def _current(self, answer: dict) -> bool:
        """A decision of an epoch older than the newest seen is not trusted (fencing)."""
        try:
            self.fence.admit(answer.get("epoch", 0), "buy decision")
        except ApiError:
            return False
        return True

    def _open_all(self, wanted: list[dict]) -> list[dict | ApiError]:
        """For each wanted order, the existing order for its id or a new pending one (kept
        local until decided); a 422 if its key was used for a different purchase."""
        opened = []
        with self.ctx.write_lock, self.engine.begin() as conn:
            for order in wanted:
                opened.append(
                    self._open(conn, order_id_for(order["idempotency_key"]), order["items"])
                )
        return [
            order
            if rows.same_lines(order, want["items"])
            else ApiError(
                422,
                "this Idempotency-Key was used for a different purchase",
                order_id=order["order_id"],
            )
            for order, want in zip(opened, wanted, strict=True)
        ]

    def _open(self, conn, order_id: str, lines: list[dict]) -> dict:
        row = {
            "order_id": order_id,
            "book_id": lines[0]["book_id"] if len(lines) == 1 else None,
            "quantity": sum(line["quantity"] for line in lines),
            "total": 0.0,
            "status": PENDING,
            "created_at": now_iso(),
        }
        if not RAW_OPEN.run(conn, row).rowcount:
            return rows.find(conn, order_id)  # the one already there
        unpriced = _by_book({**line, "unit_price": None} for line in lines)
        rows.merge_lines(conn, order_id, unpriced)
        return {**row, "items": unpriced}  # what rows.find would read back

    def _decide(self, order_id: str, answer: dict) -> dict:
        """Record one verdict the reconciler learned (see _decide_all)."""
        return self._decide_all([(order_id, answer, None)])[order_id]

    def _decide_all(self, verdicts: list[tuple[str, dict, dict | None]]) -> dict[str, dict]:
        """Record the catalog's verdicts (order id, answer, the order as opened here if
        known) with their prices in one transaction, and replicate them before answering.

        The push happens after the write lock is released: two order servers
        pushing to each other while each held its own lock would deadlock.
        """
        decided, staged = {}, []
        if not verdicts:
            return decided
        with self.ctx.write_lock:
            with self.engine.begin() as conn:
                for order_id, answer, pending in verdicts:
                    decided[order_id] = order = _record(conn, order_id, answer, pending)
                    staged += self.replicator.stage(conn, sync.entry(order))
            ticket = self.replicator.enqueue(staged)  # in commit order
        self.replicator.wait(ticket, staged)
        for order_id, answer, _ in verdicts:
            order = decided[order_id]
            if order["status"] == REJECTED:
                order["short"] = answer.get("short") or [x["book_id"] for x in order["items"]]
        return decided

    def _drop_pending(self, order_ids: list[str]) -> None:
        """Orders the catalog refused outright (unknown books): as if never placed."""
        if not order_ids:
            return
        with self.ctx.write_lock, self.engine.begin() as conn:
            for order_id in order_ids:
                gone = conn.execute(
                    delete(orders).where(orders.c.order_id == order_id, orders.c.status == PENDING)
                ).rowcount
                if gone:
                    conn.execute(delete(order_items).where(order_items.c.order_id == order_id))

    @contextmanager
    def _flying(self, order_ids):
        """Mark orders as being worked on, so the reconciler leaves them alone."""
        with self._flight_lock:
            self._in_flight.update(order_ids)
        try:
            yield
        finally:
            with self._flight_lock:
                self._in_flight.difference_update(order_ids)

    # -- unknown outcomes ------------------------------------------------------
    def pending_orders(self) -> tuple[int, float | None]:
        """How many orders wait for a decision here, and the oldest one's age in seconds."""
        with self.engine.connect() as conn:
            query = select(func.count(), func.min(orders.c.created_at)).where(
                orders.c.status == PENDING
            )
            count, oldest = conn.execute(query).one()
        try:
            return count, (datetime.now(UTC) - datetime.fromisoformat(oldest)).total_seconds()
        except (TypeError, ValueError):  # none pending (None), or a row from before validation
            return count, None

    def reconcile(self) -> int:
        """Ask the catalog about pending orders nobody is working on; return how many settled."""
        resolve_after = timedelta(seconds=self.ctx.cluster.tuning.resolve_after)
        cutoff = (datetime.now(UTC) - resolve_after).isoformat(timespec="milliseconds")
        query = select(orders.c.order_id).where(
            orders.c.status == PENDING, orders.c.created_at < cutoff
        )
        with self.engine.connect() as conn:
            stale = [rows.find(conn, order_id) for (order_id,) in conn.execute(query)]
        settled = 0
        for order in stale:
            if order is None or order["order_id"] in self._in_flight:
                continue
            lines = [{"book_id": x["book_id"], "quantity": x["quantity"]} for x in order["items"]]
            try:
                response = self.router.write(
                    "catalog",
                    "POST",
                    "/resolve",
                    json={"order_id": order["order_id"], "items": lines},
                )
            except NoReplica:
                return settled
            if response.status_code == 200 and self._current(response.json()):
                self._decide(order["order_id"], response.json())
                self._fenced_late(order, response.json())
                settled += 1
        return settled

    def _fenced_late(self, order: dict, answer: dict) -> None:
        """Log and count an order fenced as aborted after its key's window (docs/scale.md
        §5): its decision, if the catalog made one, may have been compacted, and the stock
        it took stays taken. Measured on this node's wall clock, as order times are: only
        this log line and count rest on it."""
        if answer.get("outcome") != "aborted":
            return
        try:
            waited = datetime.now(UTC) - datetime.fromisoformat(order["created_at"])
        except (TypeError, ValueError):
            return
        if waited.total_seconds() > self.ctx.cluster.retention.keys_seconds:
            ORDERS_FENCED_AFTER_WINDOW.inc()
            log.warning(
                "order %s was pending %s, past the key window: fenced as aborted; any stock "
                "its lost decision took stays taken",
                order["order_id"],
                waited,
            )

    def start_reconciler(self, period: float = 2.0) -> None:
        def loop():
            while True:
                time.sleep(period)
                if self.ctx.status == "up":
                    try:
                        self.reconcile()
                    except Exception:
                        log.exception("reconcile round failed")

        threading.Thread(target=loop, name="reconciler", daemon=True).start()

    # -- replication -----------------------------------------------------------
    def apply(self, entries: list[dict]) -> None:
        """Insert by order id, idempotent and order-insensitive.

        A decided row replaces only a 'pending' one (created_at included); when
        two order servers both decided it (a retry moved), the earlier
        created_at wins on both.
        """
        with self.ctx.write_lock, self.engine.begin() as conn:
            for entry in entries:
                if entry.get("order"):
                    rows.merge_order(conn, entry["order"])
                if entry.get("items"):
                    rows.merge_lines(conn, entry["order"]["order_id"], entry["items"])

    def apply_queued(self, entries: list) -> None:
        """Entries replayed from the recovery queue: checked first (the queue takes any)."""
        self.apply(valid_entries(OrderEntrySchema, entries))

    def receive(self, push: dict) -> dict:
        self.apply(push["entries"])
        if push.get("queued"):  # the peer queued entries for us while it could not reach us
            self.replicator.drain_soon()
        return {"applied": True}

    def snapshot(self) -> dict:
        """GET /sync: decided orders with their lines, as entries a peer can apply (pending
        ones stay local): a page after a seq (`order.sync`), or all of them when no
        `limit` is asked (what a peer of an older version asks)."""
        limit, after = sync.PAGE_LIMIT.read(), sync.PAGE_AFTER.read()
        with self.engine.connect() as conn:
            if limit is not None:
                return sync.page(conn, after, limit)
            decided = rows.find_all(conn, orders.c.status != PENDING)
        return {"entries": [sync.entry(order) for order in decided]}


def _record(conn, order_id: str, answer: dict, pending: dict | None) -> dict:
    """Write one verdict: the order as it now stands."""
    status = CONFIRMED if answer["outcome"] == "applied" else REJECTED
    ORDER_DECISIONS.labels(status).inc()
    total = float(Decimal(answer.get("total") or "0")) if status == CONFIRMED else 0.0
    priced = [_priced(line) for line in answer.get("items", ())]
    values = {"order": order_id, "new_status": status, "new_total": total}
    decided = RAW_DECIDE.run(conn, values).rowcount
    if priced:
        rows.merge_lines(conn, order_id, priced)
    if decided and pending is not None:  # our pending row, now as written
        items = _by_book(priced) if priced else pending["items"]
        return {**pending, "status": status, "total": total, "items": items}
    return rows.find(conn, order_id)  # decided meanwhile (a peer, the reconciler)


def _for_order(error: ApiError, order_id: str) -> ApiError:
    """The same error, naming one order (so its client can retry with the same key)."""
    return ApiError(error.status, error.message, **{**error.extra, "order_id": order_id})


def _priced(line: dict) -> dict:
    return {k: line[k] for k in ("book_id", "quantity", "unit_price")}


def _by_book(lines) -> list[dict]:
    """Lines in the order rows.find returns them."""
    return sorted(lines, key=lambda line: line["book_id"])


def _books(answer: dict) -> dict:
    books = answer.get("books")
    return {"books": books} if isinstance(books, list) else {}
