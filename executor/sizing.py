"""How many shares a plan buys. Decimal only; rounding always in the user's favour.

    quantity = round_down((amount - fee) * fx_rate / price, SHARE_DECIMALS)
    cost     = quantity * price + fee * fx_rate        (asset currency)

so quantity * price + fee * fx_rate never exceeds amount * fx_rate.
"""

from __future__ import annotations

import decimal
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

from common.domain.statuses import Reason

COST_PLACES = Decimal("0.0001")  # cost basis is NUMERIC(20,4)
# What the ledger's columns hold: cost basis NUMERIC(20,4), quantity NUMERIC(28,8).
MAX_COST = Decimal("1e16")
MAX_QUANTITY = Decimal("1e20")

# Wide enough that no intermediate product or quotient of our amounts
# (20 digits) and prices is ever rounded before the final round-down.
_CONTEXT = decimal.Context(prec=60, rounding=ROUND_DOWN, traps=[decimal.InvalidOperation])


@dataclass(frozen=True, slots=True)
class Purchase:
    quantity: Decimal
    cost: Decimal  # quantity * price + fee * fx_rate, exact
    cost_basis_delta: Decimal  # `cost` rounded half-up to 4 places, as the ledger stores it


@dataclass(frozen=True, slots=True)
class Skip:
    reason: str


def size_purchase(
    *,
    amount: Decimal,
    fee: Decimal,
    fx_rate: Decimal,
    price: Decimal,
    share_decimals: int,
    fractional: bool,
) -> Purchase | Skip:
    """Size one purchase. A zero quantity is `Skip(amount_below_minimum)`."""
    if not (price.is_finite() and fx_rate.is_finite()) or price <= 0 or fx_rate <= 0:
        raise ValueError("price and fx_rate must be positive and finite")
    places = Decimal(1).scaleb(-share_decimals) if fractional else Decimal(1)
    with decimal.localcontext(_CONTEXT):
        available = (amount - fee) * fx_rate
        quantity = (available / price).quantize(places, rounding=ROUND_DOWN)
        if quantity <= 0:
            return Skip(Reason.AMOUNT_BELOW_MINIMUM)
        cost = quantity * price + fee * fx_rate
        delta = cost.quantize(COST_PLACES, rounding=ROUND_HALF_UP)
    return Purchase(quantity=quantity, cost=cost, cost_basis_delta=delta)


def too_large_to_record(purchase: Purchase) -> str | None:
    """Why the ledger could not store `purchase`, or None. A plan amount that is valid in
    its own currency can still overflow the holding's columns once converted (an amount
    near the limit in USD, bought in KRW)."""
    if purchase.cost_basis_delta >= MAX_COST:
        return "amount is too large in the asset currency"
    if purchase.quantity >= MAX_QUANTITY:
        return "quantity is too large"
    return None
