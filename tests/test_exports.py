"""The public surface changes only on purpose."""

from __future__ import annotations

import importlib

import pytest

import rxbinance

EXPECTED = {
    "rxbinance": {
        "BinanceStreams",
        "ConnectError",
        "ConnectionDropped",
        "ConnectionFailure",
        "HandshakeError",
        "InvalidInputError",
        "ProtocolError",
        "RxBinanceError",
        "ServerShutdown",
        "StallError",
        "StreamStatistics",
        "__version__",
        "events",
    },
    "rxbinance.websockets": {"BinanceSocketManager"},
    "rxbinance.operators": {"demultiplex", "merge_tagged", "select_stream", "tag"},
    "rxbinance.events": {
        "Connected",
        "Connecting",
        "ConnectionEvent",
        "Disconnected",
        "GaveUp",
        "MalformedFrame",
        "Reconnecting",
    },
}


@pytest.mark.parametrize("module_name", sorted(EXPECTED))
def test_exports(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert set(module.__all__) == EXPECTED[module_name]
    for name in module.__all__:
        assert hasattr(module, name), name


def test_star_import_of_enums_gives_the_kline_intervals() -> None:
    namespace: dict[str, object] = {}
    exec("from rxbinance.enums import *", namespace)
    assert namespace["KLINE_INTERVAL_1MINUTE"] == "1m"
    assert namespace["KLINE_INTERVAL_1MONTH"] == "1M"
    assert rxbinance.__version__
