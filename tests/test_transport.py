"""The transport: big and many frames, pings keeping a quiet socket alive."""

from __future__ import annotations

import json

from rxbinance import BinanceStreams
from rxbinance.events import Disconnected
from rxbinance.testing import FakeBinance
from rxbinance.transport import READ_CHUNK
from tests.conftest import Collector


def test_many_small_and_one_huge_frame_arrive_intact_and_in_order(
    fake: FakeBinance, streams: BinanceStreams
) -> None:
    got = Collector()
    sub = streams.stream("btcusdt@depth").subscribe(got)
    fake.wait_for_connections(1, stream="btcusdt@depth")
    # Update ids that follow one another: diff depth is a sequenced stream (a repeat would be
    # dropped, a jump reported as a Gap).
    huge = {"e": "depthUpdate", "U": 500, "u": 500, "b": [[f"{i}.0", "1"] for i in range(40_000)]}
    assert len(json.dumps(huge)) > 2 * READ_CHUNK
    for i in range(500):
        fake.publish("btcusdt@depth", {"e": "depthUpdate", "U": i, "u": i})
    fake.publish("btcusdt@depth", huge)
    fake.publish("btcusdt@depth", {"e": "depthUpdate", "U": 501, "u": 501})
    got.wait_count(502)
    assert [m["U"] for m in got.items[:500]] == list(range(500))
    assert got.items[500] == huge
    assert got.items[501]["U"] == 501
    sub.dispose()


def test_server_pings_keep_a_quiet_socket_alive() -> None:
    # No data at all, but a ping every 0.25 s: a 0.75 s stall timeout must never fire, because
    # every ping re-arms it (and the client's pongs keep the server from dropping us). Pings
    # any faster would make our pongs break Binance's 5 incoming frames per second.
    with (
        FakeBinance(tick_interval=None, ping_interval=0.25, pong_timeout=1.0) as fake,
        BinanceStreams(ws_url=fake.ws_url, stall_timeout=0.75) as streams,
    ):
        events = Collector()
        streams.events.subscribe(events)
        sub = streams.trades("BTCUSDT").subscribe(Collector())
        fake.wait_for_connections(1)
        fake.wait_for(lambda f: f.connections[0].pongs_received >= 8, timeout=10)
        assert not [e for e in events.items if isinstance(e, Disconnected)]
        assert len(fake.connections) == 1
        sub.dispose()
