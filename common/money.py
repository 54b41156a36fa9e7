"""Exact money: prices are whole cents, sums are decimals, amounts travel as text.

A book's `cost` is stored as SQLite REAL (the storage contract) but only
ever holds whole cents (write routes refuse finer prices), so
`Decimal(repr(cost))` is the exact price. Order lines keep `unit_price` as
decimal text ("19.99") and every total is a `Decimal` sum, never a float one.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal, InvalidOperation

CENT = Decimal("0.01")


def _decimal(value: float | int | str | Decimal) -> Decimal:
    # repr of a float is its shortest round-trip text: 19.99, not 19.989999...
    if isinstance(value, Decimal):
        return value
    try:
        return Decimal(repr(value) if isinstance(value, float) else str(value))
    except InvalidOperation:
        raise ValueError(f"not an amount of money: {value!r}") from None


def exact(value: float | int | str | Decimal) -> Decimal:
    """A price or amount as an exact decimal of whole cents."""
    return _decimal(value).quantize(CENT)


def text(amount: Decimal | float | int | str) -> str:
    """Money as it leaves the system: '1234.50'."""
    return str(exact(amount))


def in_cents(value: float | int) -> float | None:
    """A number as a whole-cents price, or None if it has finer parts.

    19.99 and 0.1 + 0.2 (0.30000000000000004: float noise, not a price of
    its own) are taken, as 19.99 and 0.3; 19.999 is not.
    """
    cents = round(value, 2)
    return float(cents) if abs(value - cents) < 1e-6 else None


def line_total(quantity: int, unit_price: str | Decimal) -> Decimal:
    return exact(unit_price) * quantity


def total(lines: Iterable[dict]) -> Decimal:
    """Σ quantity × unit_price over order lines, exactly."""
    return sum(
        (line_total(line["quantity"], line["unit_price"]) for line in lines), Decimal("0.00")
    )
