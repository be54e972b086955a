"""Binance endpoints per market and the URL shapes of stream sockets (binance-protocol.md 1, 8).

Spot streams live at ``<base>/ws/<name>`` and ``<base>/stream?streams=...``. USD-M futures
streams live on routed paths since 2026-04-23: ``<base>/public/...`` (book data),
``<base>/market/...`` (everything else) and ``<base>/private/ws?listenKey=...&events=...`` (user
data); a stream on the wrong route, or on an un-routed URL, connects and delivers nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

from rxbinance.errors import InvalidInputError

__all__ = [
    "MARKETS",
    "Endpoints",
    "Product",
    "combined_url",
    "endpoints_for",
    "private_url",
    "raw_url",
    "routed_combined_url",
    "routed_raw_url",
]

#: What a market trades, which decides stream names, routes and user data: spot, or USD-M
#: futures.
Product = Literal["spot", "usdm"]


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Where one market lives: stream base, REST base and WebSocket API URL, and its
    ``product`` (``"spot"`` or ``"usdm"``)."""

    ws_url: str
    rest_url: str
    ws_api_url: str
    product: Product = "spot"


MARKETS: dict[str, Endpoints] = {
    "spot": Endpoints(
        ws_url="wss://stream.binance.com:9443",
        rest_url="https://api.binance.com",
        ws_api_url="wss://ws-api.binance.com:443/ws-api/v3",
    ),
    "spot-testnet": Endpoints(
        ws_url="wss://stream.testnet.binance.vision",
        rest_url="https://testnet.binance.vision",
        ws_api_url="wss://ws-api.testnet.binance.vision/ws-api/v3",
    ),
    "spot-demo": Endpoints(
        ws_url="wss://demo-stream.binance.com:9443",
        rest_url="https://demo-api.binance.com",
        ws_api_url="wss://demo-ws-api.binance.com/ws-api/v3",
    ),
    "usdm": Endpoints(
        ws_url="wss://fstream.binance.com",
        rest_url="https://fapi.binance.com",
        ws_api_url="wss://ws-fapi.binance.com/ws-fapi/v1",
        product="usdm",
    ),
    "usdm-testnet": Endpoints(
        ws_url="wss://fstream.binancefuture.com",
        rest_url="https://testnet.binancefuture.com",
        ws_api_url="wss://testnet.binancefuture.com/ws-fapi/v1",
        product="usdm",
    ),
}


def endpoints_for(market: str) -> Endpoints:
    """The endpoints of ``market``, or InvalidInputError naming the known markets."""
    try:
        return MARKETS[market]
    except KeyError:
        allowed = ", ".join(repr(m) for m in MARKETS)
        raise InvalidInputError(f"unknown market {market!r}: allowed are {allowed}") from None


def raw_url(base: str, name: str) -> str:
    """``<base>/ws/<name>``: one stream, payloads delivered bare."""
    # '!' and '@' are legal in a path; quote only what is not (UTF-8 symbols, '+' of @+08:00).
    return f"{base.rstrip('/')}/ws/{quote(name, safe='!@')}"


def combined_url(base: str, names: list[str]) -> str:
    """``<base>/stream?streams=a/b``: payloads wrapped as ``{"stream": name, "data": ...}``."""
    return f"{base.rstrip('/')}/stream?streams={quote('/'.join(names), safe='!@/')}"


def routed_raw_url(base: str, route: str, name: str) -> str:
    """``<base>/<route>/ws/<name>``: one USD-M stream on its route, payloads delivered bare."""
    return raw_url(f"{base.rstrip('/')}/{route}", name)


def routed_combined_url(base: str, route: str, names: list[str]) -> str:
    """``<base>/<route>/stream?streams=a/b``: USD-M streams of one route, payloads wrapped."""
    return combined_url(f"{base.rstrip('/')}/{route}", names)


def private_url(base: str, listen_key: str, events: Sequence[str] = ()) -> str:
    """``<base>/private/ws?listenKey=<key>&events=<E1>/<E2>``: USD-M user data, unwrapped.

    ``events`` names the event types to receive; empty leaves the parameter out.
    """
    url = f"{base.rstrip('/')}/private/ws?listenKey={quote(listen_key, safe='')}"
    if events:
        url += "&events=" + quote("/".join(events), safe="/")
    return url
