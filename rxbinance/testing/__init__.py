"""rxbinance.testing: a fake Binance to test your own trading code against.

:class:`FakeBinance` is a real server on 127.0.0.1 (free ports, background daemon threads)
that speaks Binance spot's market streams, the WebSocket API envelope and the REST endpoints a
streams library needs, fed by a deterministic synthetic market (seeded random walk, a full
order book whose every change has an update id, trades, klines, tickers). It enforces Binance's
connection rules (pings with a deadline for the pong, 5 incoming messages per second and 1024
streams per connection (10 and 200 on the USD-M routes), 300 connection attempts per 5 minutes
per IP, 24 h connection age; all configurable so tests run fast) and injects
faults on demand: dropped or refused connections, stalls, malformed frames, ``serverShutdown``,
order-book gaps, HTTP 429/418. Everything it sees is recorded as frozen snapshots
(``fake.connections``, ``fake.open_connections``, ``fake.attempts``, ``fake.rest_requests``),
and :meth:`FakeBinance.wait_for` waits for any condition, on them or on your own code's state,
without sleeping: it returns as soon as the condition holds and raises TimeoutError when it
still does not after its timeout.

rxbinance in one step: ``fake.streams()`` is a :class:`~rxbinance.BinanceStreams` pointed at
every endpoint of the fake (streams, REST, WebSocket API), so pipelines that need REST
(``order_book``, ``klines_with_history``) work against it too; its keyword arguments go to
BinanceStreams (``fake.streams(market="usdm")``, ``fake.streams(retry_delay=0.05)``,
``fake.streams(api_key=..., api_secret=...)``)::

    import rxbinance
    from rxbinance.testing import FakeBinance

    with FakeBinance(tick_interval=0.01) as fake, fake.streams() as streams:
        books = []
        rxbinance.order_book(streams, "BTCUSDT").subscribe(books.append)
        fake.wait_for(lambda f: len(books) >= 3, timeout=30)
        book = books[2]  # (books[-1] may be a newer one by the next line: the market ticks)
        truth = fake.true_book("BTCUSDT", book.update_id)
        assert book.bids(5) == list(truth.bids[:5])

Any other client: point it at ``fake.ws_url`` / ``fake.rest_url`` / ``fake.ws_api_url``
instead of ``wss://stream.binance.com:9443`` / ``https://api.binance.com`` /
``wss://ws-api.binance.com/ws-api/v3``. A pytest test (websocket-client stands in for your
own code)::

    import json

    import pytest
    import websocket

    from rxbinance.testing import FakeBinance


    @pytest.fixture
    def fake():
        with FakeBinance(tick_interval=None) as server:  # paused: the market moves on step()
            yield server


    def test_my_code(fake):
        ws = websocket.create_connection(fake.ws_url + "/ws/btcusdt@trade", timeout=5)
        fake.wait_for_connections(1, stream="btcusdt@trade")  # no sleep: waits for the event

        # Scripted data: exactly this payload, to every subscriber of the stream.
        fake.publish("btcusdt@trade", {"e": "trade", "s": "BTCUSDT", "p": "1.0"})
        assert json.loads(ws.recv())["p"] == "1.0"

        # Or let the synthetic market move; step() returns what it sent.
        events = fake.step(20)
        received = [json.loads(ws.recv()) for _ in events]
        assert received == [payload for _, payload in events]
        assert received[-1] == fake.trades("BTCUSDT")[-1]  # the market's ground truth

        # Faults: cut every connection without a close frame, then watch the client's
        # reconnect arrive (here a second create_connection stands for it).
        fake.drop_connections()
        ws.close()
        ws = websocket.create_connection(fake.ws_url + "/ws/btcusdt@trade", timeout=5)
        assert [a.accepted for a in fake.wait_for_attempts(2)] == [True, True]
        assert fake.connections[0].close_cause == "drop"
        ws.close()

Other faults: ``refuse_connections``, ``stall``, ``send_malformed``, ``server_shutdown``,
``inject_gap`` (order-book sequence gaps), ``rest_fault`` (HTTP 429/418); :func:`run_chaos`
injects a seeded mix of all of them into rxbinance's own streams and counts what was lost
against the market's true history (``benchmarks/chaos.py``). Rules are arguments:
``FakeBinance(ping_interval=0.05, pong_timeout=0.3, max_connection_age=1.0,
max_incoming_per_second=None)`` makes the 20 s / 60 s / 24 h behaviours testable in a second
(pongs to pings that fast would break the 5 messages a second), and
``fake.refuse_streams(name)`` refuses a well-formed name, as Binance refuses names it does not
know; ``record.control_log`` (when each SUBSCRIBE / UNSUBSCRIBE came) and
``fake.connection_attempts`` let a test check a client's pacing.

User data and USD-M: ``FakeBinance(api_keys={"key": "secret"})`` (or ``fake.add_api_key``)
configures accounts; the WebSocket API at ``fake.ws_api_url`` checks
``userDataStream.subscribe.signature`` like Binance (-2015, -1022, -1021) and
``fake.publish_user_event(api_key, event)`` sends an account's events to its spot subscriptions
and USD-M listen-key connections (``/private/ws?listenKey=...``); ``fake.expire_listen_key`` and
``fake.revoke_api_key`` provoke what expiry and revocation look like. The USD-M routes
``/public``, ``/market`` and ``/private`` are served on the stream port, with ``/fapi/v1`` REST.

Threads and time: the server runs in daemon threads (``FakeBinance-loop``,
``FakeBinance-rest``, ``FakeBinance-rest-conn``), so a forgotten ``stop()`` never hangs the
process; ``stop()`` (or leaving the ``with`` block) closes every connection and joins them. With
``tick_interval=0.1`` the market runs at about real speed (one tick = 100 ms of market time);
smaller intervals run it faster, ``None`` pauses it. REST ``/api/v3/time`` and every event
time use the market's clock.

Extras: :class:`FakeBinance` runs on ``websockets`` (the ``testing`` extra,
``pip install 'rxbinance[testing]'``); without it, importing FakeBinance raises
``ModuleNotFoundError: rxbinance.testing.FakeBinance needs websockets>=13: pip install
'rxbinance[testing]'``, while the rest of this package (:class:`Market`, the records) still
imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._chaos import ChaosReport, SequenceTally, run_chaos
from ._market import BookState, Market, MarketError
from ._records import (
    CloseCause,
    ConnectionAttempt,
    ConnectionKind,
    ConnectionRecord,
    RestRequest,
)
from ._scripted import ScriptedSocket, ScriptedTransport

if TYPE_CHECKING:
    from ._server import FakeBinance

__all__ = [
    "BookState",
    "ChaosReport",
    "CloseCause",
    "ConnectionAttempt",
    "ConnectionKind",
    "ConnectionRecord",
    "FakeBinance",
    "Market",
    "MarketError",
    "RestRequest",
    "ScriptedSocket",
    "ScriptedTransport",
    "SequenceTally",
    "run_chaos",
]

_MISSING_EXTRA = (
    "rxbinance.testing.FakeBinance needs websockets>=13: pip install 'rxbinance[testing]'"
)


def __getattr__(name: str) -> Any:
    # FakeBinance is imported on first use: it is the only part of the kit built on
    # websockets (the ``testing`` extra), so the market, the records and anything else here
    # import without it, and ``from rxbinance.testing import FakeBinance`` without the extra
    # fails with one line saying what to install instead of a traceback into websockets.
    if name != "FakeBinance":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        from ._server import FakeBinance
    except ModuleNotFoundError as exc:
        # websockets missing, or older than 13 (no websockets.asyncio): the extra fixes both.
        if exc.name is None or exc.name.split(".")[0] != "websockets":
            raise
        # One line, no chained traceback into the import machinery: the fix is the command.
        raise ModuleNotFoundError(_MISSING_EXTRA, name="websockets") from None
    globals()["FakeBinance"] = FakeBinance
    return FakeBinance


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
