"""User data events: spot (protocol reference 6.1, 6.3) and USD-M futures (8.5).

Spot user events arrive on the WebSocket API wrapped as ``{"subscriptionId": N, "event": {...}}``;
the models take the inner event (``parse`` unwraps). Fields Binance sends only in some situations
(or added recently) are optional and ``None`` when absent.
"""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

from ._base import _f, _Model, _model, _OptionalUtc, _Utc

__all__ = [
    "AccountPosition",
    "AccountUpdate",
    "Balance",
    "BalanceUpdate",
    "EventStreamTerminated",
    "ExecutionReport",
    "ExternalLockUpdate",
    "FuturesBalance",
    "FuturesPosition",
    "ListOrder",
    "ListStatus",
    "ListenKeyExpired",
    "OrderTradeUpdate",
]


# ---------------------------------------------------------------------------------------------
# Spot


@_model
class Balance(_Model):
    """One asset of an ``outboundAccountPosition``."""

    EVENT_LABEL: ClassVar[str] = "balance"

    asset: str = _f("a")
    free: Decimal = _f("f")
    locked: Decimal = _f("l")


@_model
class AccountPosition(_Model):
    """``outboundAccountPosition``: balances of the assets that may have changed."""

    EVENT_LABEL: ClassVar[str] = "outboundAccountPosition"
    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("outboundAccountPosition",)

    event_time: int = _f("E")
    last_update_time: int = _f("u")
    balances: tuple[Balance, ...] = _f("B")

    event_dt = _Utc("event_time")
    last_update_dt = _Utc("last_update_time")


@_model
class BalanceUpdate(_Model):
    """``balanceUpdate``: a deposit, withdrawal or transfer changed ``asset`` by ``delta``."""

    EVENT_LABEL: ClassVar[str] = "balanceUpdate"
    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("balanceUpdate",)

    event_time: int = _f("E")
    asset: str = _f("a")
    delta: Decimal = _f("d")
    clear_time: int = _f("T")

    event_dt = _Utc("event_time")
    clear_dt = _Utc("clear_time")


@_model
class ExternalLockUpdate(_Model):
    """``externalLockUpdate``: ``delta`` of ``asset`` locked (or unlocked) by another system."""

    EVENT_LABEL: ClassVar[str] = "externalLockUpdate"
    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("externalLockUpdate",)

    event_time: int = _f("E")
    asset: str = _f("a")
    delta: Decimal = _f("d")
    clear_time: int = _f("T")

    event_dt = _Utc("event_time")
    clear_dt = _Utc("clear_time")


@_model
class ExecutionReport(_Model):
    """``executionReport``: an order was created, changed, traded, canceled or expired.

    Required: the fields Binance always sends. ``None`` when absent: ``working_time`` (only for
    orders on the book), ``execution_id``/``self_trade_prevention_mode`` (missing from older
    payloads) and the conditional fields (trailing stops, strategies, self-trade prevention,
    SOR, pegged orders, expiry reason). ``commission_asset`` is ``None`` before any commission.
    """

    EVENT_LABEL: ClassVar[str] = "executionReport"
    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("executionReport",)

    event_time: int = _f("E")
    symbol: str = _f("s")
    client_order_id: str = _f("c")
    side: str = _f("S")
    order_type: str = _f("o")
    time_in_force: str = _f("f")
    quantity: Decimal = _f("q")
    price: Decimal = _f("p")
    stop_price: Decimal = _f("P")
    iceberg_quantity: Decimal = _f("F")
    order_list_id: int = _f("g")
    original_client_order_id: str = _f("C")
    execution_type: str = _f("x")
    order_status: str = _f("X")
    reject_reason: str = _f("r")
    order_id: int = _f("i")
    last_executed_quantity: Decimal = _f("l")
    cumulative_filled_quantity: Decimal = _f("z")
    last_executed_price: Decimal = _f("L")
    commission: Decimal = _f("n")
    transaction_time: int = _f("T")
    trade_id: int = _f("t")
    is_on_book: bool = _f("w")
    is_maker: bool = _f("m")
    creation_time: int = _f("O")
    cumulative_quote_quantity: Decimal = _f("Z")
    last_quote_quantity: Decimal = _f("Y")
    quote_order_quantity: Decimal = _f("Q")
    commission_asset: str | None = _f("N", default=None)
    execution_id: int | None = _f("I", default=None)
    working_time: int | None = _f("W", default=None)
    self_trade_prevention_mode: str | None = _f("V", default=None)
    trailing_delta: int | None = _f("d", default=None)
    trailing_time: int | None = _f("D", default=None)
    strategy_id: int | None = _f("j", default=None)
    strategy_type: int | None = _f("J", default=None)
    prevented_match_id: int | None = _f("v", default=None)
    prevented_quantity: Decimal | None = _f("A", default=None)
    last_prevented_quantity: Decimal | None = _f("B", default=None)
    trade_group_id: int | None = _f("u", default=None)
    counter_order_id: int | None = _f("U", default=None)
    counter_symbol: str | None = _f("Cs", default=None)
    prevented_execution_quantity: Decimal | None = _f("pl", default=None)
    prevented_execution_price: Decimal | None = _f("pL", default=None)
    prevented_execution_quote_quantity: Decimal | None = _f("pY", default=None)
    match_type: str | None = _f("b", default=None)
    allocation_id: int | None = _f("a", default=None)
    working_floor: str | None = _f("k", default=None)
    used_sor: bool | None = _f("uS", default=None)
    peg_price_type: str | None = _f("gP", default=None)
    peg_offset_type: str | None = _f("gOT", default=None)
    peg_offset_value: int | None = _f("gOV", default=None)
    pegged_price: Decimal | None = _f("gp", default=None)
    expiry_reason: str | None = _f("eR", default=None)

    event_dt = _Utc("event_time")
    transaction_dt = _Utc("transaction_time")
    creation_dt = _Utc("creation_time")
    working_dt = _OptionalUtc("working_time")
    trailing_dt = _OptionalUtc("trailing_time")


@_model
class ListOrder(_Model):
    """One order of a ``listStatus``."""

    EVENT_LABEL: ClassVar[str] = "listOrder"

    symbol: str = _f("s")
    order_id: int = _f("i")
    client_order_id: str = _f("c")


@_model
class ListStatus(_Model):
    """``listStatus``: the state of an order list (OCO, OTO...), sent with its executionReports."""

    EVENT_LABEL: ClassVar[str] = "listStatus"
    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("listStatus",)

    event_time: int = _f("E")
    symbol: str = _f("s")
    order_list_id: int = _f("g")
    contingency_type: str = _f("c")
    list_status_type: str = _f("l")
    list_order_status: str = _f("L")
    list_reject_reason: str = _f("r")
    list_client_order_id: str = _f("C")
    transaction_time: int = _f("T")
    orders: tuple[ListOrder, ...] = _f("O")

    event_dt = _Utc("event_time")
    transaction_dt = _Utc("transaction_time")


@_model
class EventStreamTerminated(_Model):
    """``eventStreamTerminated``: the user data subscription ended (unsubscribe, logout...)."""

    EVENT_LABEL: ClassVar[str] = "eventStreamTerminated"
    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("eventStreamTerminated",)

    event_time: int = _f("E")

    event_dt = _Utc("event_time")


@_model
class ListenKeyExpired(_Model):
    """``listenKeyExpired`` (futures, legacy spot). Futures sends ``E`` as a digit string."""

    EVENT_LABEL: ClassVar[str] = "listenKeyExpired"
    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("listenKeyExpired",)

    event_time: int = _f("E")
    listen_key: str = _f("listenKey")

    event_dt = _Utc("event_time")


# ---------------------------------------------------------------------------------------------
# USD-M futures


@_model
class FuturesBalance(_Model):
    """One asset of an ``ACCOUNT_UPDATE``.

    ``balance_change`` excludes PnL and commission.
    """

    EVENT_LABEL: ClassVar[str] = "balance"

    asset: str = _f("a")
    wallet_balance: Decimal = _f("wb")
    cross_wallet_balance: Decimal = _f("cw")
    balance_change: Decimal = _f("bc")


@_model
class FuturesPosition(_Model):
    """One position of an ``ACCOUNT_UPDATE``.

    ``accumulated_realized`` is the pre-fee accumulated realized PnL (``cr``);
    ``breakeven_price`` is ``None`` on older payloads.
    """

    EVENT_LABEL: ClassVar[str] = "position"

    symbol: str = _f("s")
    position_amount: Decimal = _f("pa")
    entry_price: Decimal = _f("ep")
    accumulated_realized: Decimal = _f("cr")
    unrealized_pnl: Decimal = _f("up")
    margin_type: str = _f("mt")
    isolated_wallet: Decimal = _f("iw")
    position_side: str = _f("ps")
    breakeven_price: Decimal | None = _f("bep", default=None)


@_model
class AccountUpdate(_Model):
    """``ACCOUNT_UPDATE`` (USD-M): changed balances and positions, with the ``reason``.

    ``positions`` is empty when Binance sends no ``P`` (e.g. cross FUNDING_FEE). ``symbol`` is
    the ``a.S`` Binance adds to some events (FUNDING_FEE), else ``None``.
    """

    EVENT_LABEL: ClassVar[str] = "ACCOUNT_UPDATE"
    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("ACCOUNT_UPDATE",)

    event_time: int = _f("E")
    transaction_time: int = _f("T")
    reason: str = _f("a.m")
    balances: tuple[FuturesBalance, ...] = _f("a.B", default=())
    positions: tuple[FuturesPosition, ...] = _f("a.P", default=())
    symbol: str | None = _f("a.S", default=None)

    event_dt = _Utc("event_time")
    transaction_dt = _Utc("transaction_time")


@_model
class OrderTradeUpdate(_Model):
    """``ORDER_TRADE_UPDATE`` (USD-M): an order changed; the ``o`` object flattened.

    ``transaction_time`` is the outer ``T``, ``trade_time`` the order's ``o.T``. Optional (``None``
    when absent): commission fields (absent before any commission), the fields of newer payloads
    (``price_protection``, STP mode, price match, GTD, expiry reason) and the conditional ones
    (trailing-stop activation price and callback rate, ``modify_id``).
    """

    EVENT_LABEL: ClassVar[str] = "ORDER_TRADE_UPDATE"
    EVENT_TYPES: ClassVar[tuple[str, ...]] = ("ORDER_TRADE_UPDATE",)

    event_time: int = _f("E")
    transaction_time: int = _f("T")
    symbol: str = _f("o.s")
    client_order_id: str = _f("o.c")
    side: str = _f("o.S")
    order_type: str = _f("o.o")
    time_in_force: str = _f("o.f")
    quantity: Decimal = _f("o.q")
    price: Decimal = _f("o.p")
    average_price: Decimal = _f("o.ap")
    stop_price: Decimal = _f("o.sp")
    execution_type: str = _f("o.x")
    order_status: str = _f("o.X")
    order_id: int = _f("o.i")
    last_filled_quantity: Decimal = _f("o.l")
    filled_quantity: Decimal = _f("o.z")
    last_filled_price: Decimal = _f("o.L")
    trade_time: int = _f("o.T")
    trade_id: int = _f("o.t")
    bids_notional: Decimal = _f("o.b")
    asks_notional: Decimal = _f("o.a")
    is_maker: bool = _f("o.m")
    is_reduce_only: bool = _f("o.R")
    working_type: str = _f("o.wt")
    original_order_type: str = _f("o.ot")
    position_side: str = _f("o.ps")
    close_position: bool = _f("o.cp")
    realized_profit: Decimal = _f("o.rp")
    commission_asset: str | None = _f("o.N", default=None)
    commission: Decimal | None = _f("o.n", default=None)
    price_protection: bool | None = _f("o.pP", default=None)
    self_trade_prevention_mode: str | None = _f("o.V", default=None)
    price_match: str | None = _f("o.pm", default=None)
    good_till_date: int | None = _f("o.gtd", default=None)
    expiry_reason: str | None = _f("o.er", default=None)
    activation_price: Decimal | None = _f("o.AP", default=None)
    callback_rate: Decimal | None = _f("o.cr", default=None)
    modify_id: int | None = _f("o.M", default=None)

    event_dt = _Utc("event_time")
    transaction_dt = _Utc("transaction_time")
    trade_dt = _Utc("trade_time")
