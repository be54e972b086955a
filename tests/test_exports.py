"""The public surface changes only on purpose."""

from __future__ import annotations

import importlib

import pytest

import rxbinance

EXPECTED = {
    "rxbinance": {
        "BinanceAPIError",
        "BinanceStreams",
        "ConnectError",
        "ConnectionDropped",
        "ConnectionFailure",
        "HandshakeError",
        "InvalidInputError",
        "OrderBook",
        "ProtocolError",
        "Quote",
        "RateLimitError",
        "RequestError",
        "RequestTimeout",
        "RxBinanceError",
        "ServerShutdown",
        "StallError",
        "StreamStatistics",
        "WeightBudget",
        "__version__",
        "aiter",
        "best_bid_ask",
        "events",
        "klines_with_history",
        "order_book",
        "order_book_statistics",
        "replay",
        "rest_budget",
        "set_rest_budget",
    },
    "rxbinance.pipelines": {
        "Level",
        "OrderBook",
        "Quote",
        "WeightBudget",
        "best_bid_ask",
        "klines_with_history",
        "order_book",
        "order_book_statistics",
        "rest_budget",
        "set_rest_budget",
    },
    "rxbinance.websockets": {"BinanceSocketManager"},
    "rxbinance.rest": {"Client"},
    "rxbinance.bridge": {
        "BridgeError",
        "DEFAULT_PREFIX",
        "PublishStatistics",
        "Publisher",
        "as_json",
        "consume",
        "publish",
    },
    "rxbinance.errors": {
        "BridgeError",
        "InternalError",
        "StreamsClosed",
        "SubscriptionRefused",
        "BinanceAPIError",
        "ConnectError",
        "ConnectionDropped",
        "ConnectionFailure",
        "HandshakeError",
        "InvalidInputError",
        "ParseError",
        "ProtocolError",
        "QueueOverflow",
        "RateLimitError",
        "RecordingError",
        "RequestError",
        "RequestTimeout",
        "RxBinanceError",
        "ServerShutdown",
        "StallError",
    },
    "rxbinance.jupyter": {
        "DisplayTarget",
        "LiveDisplay",
        "NotebookStreams",
        "connect",
        "live_display",
        "notebook_scheduler",
        "on_loop",
    },
    "rxbinance.testing": {
        "ChaosReport",
        "SequenceTally",
        "run_chaos",
        "ScriptedSocket",
        "ScriptedTransport",
        "BookState",
        "CloseCause",
        "ConnectionAttempt",
        "ConnectionKind",
        "ConnectionRecord",
        "FakeBinance",
        "Market",
        "MarketError",
        "RestRequest",
    },
    "rxbinance.operators": {
        "BoundedStatistics",
        "ObserveOnBounded",
        "observe_on_bounded",
        "closed_klines",
        "demultiplex",
        "merge_tagged",
        "mid",
        "parse",
        "parse_as",
        "parse_list_as",
        "raise_on_give_up",
        "resample",
        "select_stream",
        "spread",
        "tag",
        "to_dataframe",
    },
    "rxbinance.events": {
        "BookResyncing",
        "BookSnapshotFailed",
        "BookSynced",
        "Connected",
        "Connecting",
        "ConnectionEvent",
        "Disconnected",
        "Gap",
        "GaveUp",
        "MalformedFrame",
        "Overflow",
        "Reconnecting",
        "Rejected",
        "RolledOver",
        "ShutdownAnnounced",
        "Silent",
        "SubscriptionsCorrected",
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


def test_every_exception_is_in_the_one_tree() -> None:
    import rxbinance.errors as errors
    from rxbinance.aio import QueueOverflow
    from rxbinance.models import ParseError
    from rxbinance.recording import RecordingError

    assert (ParseError, RecordingError, QueueOverflow) == (
        errors.ParseError,
        errors.RecordingError,
        errors.QueueOverflow,
    )
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.RxBinanceError)
        assert name in (errors.__doc__ or ""), f"{name} is missing from the drawn tree"
