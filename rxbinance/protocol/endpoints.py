"""Binance endpoints per market and the URL shapes of stream sockets (binance-protocol.md 1, 8)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from rxbinance.errors import InvalidInputError

__all__ = ["MARKETS", "Endpoints", "combined_url", "endpoints_for", "raw_url"]


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Where one market lives: stream base, REST base and WebSocket API URL."""

    ws_url: str
    rest_url: str
    ws_api_url: str


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
    ),
    "usdm-testnet": Endpoints(
        ws_url="wss://fstream.binancefuture.com",
        rest_url="https://testnet.binancefuture.com",
        ws_api_url="wss://testnet.binancefuture.com/ws-fapi/v1",
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
