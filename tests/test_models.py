"""rxbinance.models: every payload of the protocol reference and of the real captures parses into
the right model with the right values; malformed payloads raise ParseError naming the event and
the field; models are frozen, slotted and carry aware UTC datetimes."""

from __future__ import annotations

import dataclasses
import json
import pickle
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import rxbinance.models as models
from rxbinance.models import (
    AccountPosition,
    AccountUpdate,
    AggTrade,
    AvgPrice,
    Balance,
    BalanceUpdate,
    BlockTrade,
    BookTicker,
    ContinuousKline,
    DepthUpdate,
    EventStreamTerminated,
    ExecutionReport,
    ExternalLockUpdate,
    ForceOrder,
    FuturesBalance,
    FuturesPosition,
    Kline,
    ListenKeyExpired,
    ListOrder,
    ListStatus,
    MarkPrice,
    MiniTicker,
    OrderTradeUpdate,
    ParseError,
    PartialDepth,
    ReferencePrice,
    RollingTicker,
    ServerShutdownNotice,
    Ticker,
    Trade,
    parse,
    parser_for,
)

CAPTURES = Path(__file__).resolve().parent / "data"  # real Binance captures, see its README.md
D = Decimal


def j(text: str) -> Any:
    return json.loads(text)


# ---------------------------------------------------------------------------------------------
# The reference payloads (binance-protocol.md 2, 4.2, 6.1, 6.3, 8.3, 8.5), verbatim, with the
# model each must give. The expected model is built with the constructor, so every field is
# compared, the optional ones not named included (they must be None).

SPOT_MARKET: list[tuple[str, str, Any]] = [
    (
        "aggTrade",
        '{"e":"aggTrade","E":1672515782136,"s":"BNBBTC","a":12345,"p":"0.001","q":"100","f":100,"l":105,"T":1672515782136,"m":true,"M":true}',
        AggTrade(
            event_time=1672515782136,
            symbol="BNBBTC",
            agg_trade_id=12345,
            price=D("0.001"),
            quantity=D("100"),
            first_trade_id=100,
            last_trade_id=105,
            trade_time=1672515782136,
            buyer_is_maker=True,
        ),
    ),
    (
        "trade",
        '{"e":"trade","E":1672515782136,"s":"BNBBTC","t":12345,"p":"0.001","q":"100","T":1672515782136,"m":true,"M":true}',
        Trade(
            event_time=1672515782136,
            symbol="BNBBTC",
            trade_id=12345,
            price=D("0.001"),
            quantity=D("100"),
            trade_time=1672515782136,
            buyer_is_maker=True,
        ),
    ),
    (
        "blockTrade",
        '{"e":"blockTrade","E":1772506983582,"s":"BNBBTC","t":582,"p":"0.052","q":"5838","T":1772506983321,"m":true}',
        BlockTrade(
            event_time=1772506983582,
            symbol="BNBBTC",
            trade_id=582,
            price=D("0.052"),
            quantity=D("5838"),
            trade_time=1772506983321,
            buyer_is_maker=True,
        ),
    ),
    (
        "referencePrice",
        '{"e":"referencePrice","s":"BAZUSD","r":"1.00","t":1770313263917}',
        ReferencePrice(symbol="BAZUSD", valid_time=1770313263917, reference_price=D("1.00")),
    ),
    (
        "referencePrice null",
        '{"e":"referencePrice","s":"BAZUSD","r":null,"t":1770313263917}',
        ReferencePrice(symbol="BAZUSD", valid_time=1770313263917, reference_price=None),
    ),
    (
        "kline",
        '{"e":"kline","E":1672515782136,"s":"BNBBTC","k":{"t":1672515780000,"T":1672515839999,"s":"BNBBTC","i":"1m","f":100,"L":200,"o":"0.0010","c":"0.0020","h":"0.0025","l":"0.0015","v":"1000","n":100,"x":false,"q":"1.0000","V":"500","Q":"0.500","B":"123456"}}',
        Kline(
            event_time=1672515782136,
            symbol="BNBBTC",
            interval="1m",
            open_time=1672515780000,
            close_time=1672515839999,
            open=D("0.0010"),
            high=D("0.0025"),
            low=D("0.0015"),
            close=D("0.0020"),
            volume=D("1000"),
            quote_volume=D("1.0000"),
            taker_buy_base_volume=D("500"),
            taker_buy_quote_volume=D("0.500"),
            trades=100,
            first_trade_id=100,
            last_trade_id=200,
            closed=False,
        ),
    ),
    (
        "24hrMiniTicker",
        '{"e":"24hrMiniTicker","E":1672515782136,"s":"BNBBTC","c":"0.0025","o":"0.0010","h":"0.0025","l":"0.0010","v":"10000","q":"18"}',
        MiniTicker(
            event_time=1672515782136,
            symbol="BNBBTC",
            close=D("0.0025"),
            open=D("0.0010"),
            high=D("0.0025"),
            low=D("0.0010"),
            volume=D("10000"),
            quote_volume=D("18"),
        ),
    ),
    (
        "24hrTicker",
        '{"e":"24hrTicker","E":1672515782136,"s":"BNBBTC","p":"0.0015","P":"250.00","w":"0.0018","x":"0.0009","c":"0.0025","Q":"10","b":"0.0024","B":"10","a":"0.0026","A":"100","o":"0.0010","h":"0.0025","l":"0.0010","v":"10000","q":"18","O":0,"C":86400000,"F":0,"L":18150,"n":18151}',
        Ticker(
            event_time=1672515782136,
            symbol="BNBBTC",
            price_change=D("0.0015"),
            price_change_percent=D("250.00"),
            weighted_average_price=D("0.0018"),
            prev_close_price=D("0.0009"),
            last_price=D("0.0025"),
            last_quantity=D("10"),
            best_bid_price=D("0.0024"),
            best_bid_quantity=D("10"),
            best_ask_price=D("0.0026"),
            best_ask_quantity=D("100"),
            open=D("0.0010"),
            high=D("0.0025"),
            low=D("0.0010"),
            volume=D("10000"),
            quote_volume=D("18"),
            open_time=0,
            close_time=86400000,
            first_trade_id=0,
            last_trade_id=18150,
            trades=18151,
        ),
    ),
    (
        "1hTicker",
        '{"e":"1hTicker","E":1672515782136,"s":"BNBBTC","p":"0.0015","P":"250.00","o":"0.0010","h":"0.0025","l":"0.0010","c":"0.0025","w":"0.0018","v":"10000","q":"18","O":0,"C":1675216573749,"F":0,"L":18150,"n":18151}',
        RollingTicker(
            window="1h",
            event_time=1672515782136,
            symbol="BNBBTC",
            price_change=D("0.0015"),
            price_change_percent=D("250.00"),
            open=D("0.0010"),
            high=D("0.0025"),
            low=D("0.0010"),
            last_price=D("0.0025"),
            weighted_average_price=D("0.0018"),
            volume=D("10000"),
            quote_volume=D("18"),
            open_time=0,
            close_time=1675216573749,
            first_trade_id=0,
            last_trade_id=18150,
            trades=18151,
        ),
    ),
    (
        "bookTicker",
        '{"u":400900217,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}',
        BookTicker(
            update_id=400900217,
            symbol="BNBUSDT",
            bid_price=D("25.3519"),
            bid_quantity=D("31.21"),
            ask_price=D("25.3652"),
            ask_quantity=D("40.66"),
        ),
    ),
    (
        "avgPrice",
        '{"e":"avgPrice","E":1693907033000,"s":"BTCUSDT","i":"5m","w":"25776.86000000","T":1693907032213}',
        AvgPrice(
            event_time=1693907033000,
            symbol="BTCUSDT",
            interval="5m",
            average_price=D("25776.86"),
            last_trade_time=1693907032213,
        ),
    ),
    (
        "partial depth",
        '{"lastUpdateId":160,"bids":[["0.0024","10"]],"asks":[["0.0026","100"]]}',
        PartialDepth(
            last_update_id=160, bids=((D("0.0024"), D("10")),), asks=((D("0.0026"), D("100")),)
        ),
    ),
    (
        "depthUpdate",
        '{"e":"depthUpdate","E":1672515782136,"s":"BNBBTC","U":157,"u":160,"b":[["0.0024","10"]],"a":[["0.0026","100"]]}',
        DepthUpdate(
            event_time=1672515782136,
            symbol="BNBBTC",
            first_update_id=157,
            final_update_id=160,
            bids=((D("0.0024"), D("10")),),
            asks=((D("0.0026"), D("100")),),
        ),
    ),
    (
        "combined wrapper",
        '{"stream":"bnbbtc@depth@100ms","data":{"e":"depthUpdate","E":1672515782136,"s":"BNBBTC","U":157,"u":160,"b":[["0.0024","10"]],"a":[["0.0026","100"]]}}',
        DepthUpdate(
            event_time=1672515782136,
            symbol="BNBBTC",
            first_update_id=157,
            final_update_id=160,
            bids=((D("0.0024"), D("10")),),
            asks=((D("0.0026"), D("100")),),
        ),
    ),
    (
        "serverShutdown",
        '{"e":"serverShutdown","E":1770123456789}',
        ServerShutdownNotice(event_time=1770123456789),
    ),
    (
        "serverShutdown combined",
        '{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":1770123456789}}',
        ServerShutdownNotice(event_time=1770123456789),
    ),
    (
        "serverShutdown WS API",
        '{"event":{"e":"serverShutdown","E":1770123456789}}',
        ServerShutdownNotice(event_time=1770123456789),
    ),
]

SPOT_USER: list[tuple[str, str, Any]] = [
    (
        "listenKeyExpired (legacy spot)",
        '{"e":"listenKeyExpired","E":1699596037418,"listenKey":"OfYGbUzi3PraNagEkdKuFwUHn48brFsItTdsuiIXrucEvD0rhRXZ7I6URWfE8YE8"}',
        ListenKeyExpired(
            event_time=1699596037418,
            listen_key="OfYGbUzi3PraNagEkdKuFwUHn48brFsItTdsuiIXrucEvD0rhRXZ7I6URWfE8YE8",
        ),
    ),
    (
        "outboundAccountPosition",
        '{"subscriptionId":0,"event":{"e":"outboundAccountPosition","E":1564034571105,"u":1564034571073,"B":[{"a":"ETH","f":"10000.000000","l":"0.000000"}]}}',
        AccountPosition(
            event_time=1564034571105,
            last_update_time=1564034571073,
            balances=(Balance(asset="ETH", free=D("10000"), locked=D("0")),),
        ),
    ),
    (
        "balanceUpdate",
        '{"subscriptionId":0,"event":{"e":"balanceUpdate","E":1573200697110,"a":"BTC","d":"100.00000000","T":1573200697068}}',
        BalanceUpdate(
            event_time=1573200697110, asset="BTC", delta=D("100"), clear_time=1573200697068
        ),
    ),
    (
        "executionReport",
        '{"subscriptionId":0,"event":{"e":"executionReport","E":1499405658658,"s":"ETHBTC","c":"mUvoqJxFIILMdfAW5iGSOW","S":"BUY","o":"LIMIT","f":"GTC","q":"1.00000000","p":"0.10264410","P":"0.00000000","F":"0.00000000","g":-1,"C":"","x":"NEW","X":"NEW","r":"NONE","i":4293153,"l":"0.00000000","z":"0.00000000","L":"0.00000000","n":"0","N":null,"T":1499405658657,"t":-1,"v":3,"I":8641984,"w":true,"m":false,"M":false,"O":1499405658657,"Z":"0.00000000","Y":"0.00000000","Q":"0.00000000","W":1499405658657,"V":"NONE"}}',
        ExecutionReport(
            event_time=1499405658658,
            symbol="ETHBTC",
            client_order_id="mUvoqJxFIILMdfAW5iGSOW",
            side="BUY",
            order_type="LIMIT",
            time_in_force="GTC",
            quantity=D("1"),
            price=D("0.10264410"),
            stop_price=D("0"),
            iceberg_quantity=D("0"),
            order_list_id=-1,
            original_client_order_id="",
            execution_type="NEW",
            order_status="NEW",
            reject_reason="NONE",
            order_id=4293153,
            last_executed_quantity=D("0"),
            cumulative_filled_quantity=D("0"),
            last_executed_price=D("0"),
            commission=D("0"),
            commission_asset=None,
            transaction_time=1499405658657,
            trade_id=-1,
            prevented_match_id=3,
            execution_id=8641984,
            is_on_book=True,
            is_maker=False,
            creation_time=1499405658657,
            cumulative_quote_quantity=D("0"),
            last_quote_quantity=D("0"),
            quote_order_quantity=D("0"),
            working_time=1499405658657,
            self_trade_prevention_mode="NONE",
        ),
    ),
    (
        "listStatus",
        '{"subscriptionId":0,"event":{"e":"listStatus","E":1564035303637,"s":"ETHBTC","g":2,"c":"OCO","l":"EXEC_STARTED","L":"EXECUTING","r":"NONE","C":"F4QN4G8DlFATFlIUQ0cjdD","T":1564035303625,"O":[{"s":"ETHBTC","i":17,"c":"AJYsMjErWJesZvqlJCTUgL"},{"s":"ETHBTC","i":18,"c":"bfYPSQdLoqAJeNrOr9adzq"}]}}',
        ListStatus(
            event_time=1564035303637,
            symbol="ETHBTC",
            order_list_id=2,
            contingency_type="OCO",
            list_status_type="EXEC_STARTED",
            list_order_status="EXECUTING",
            list_reject_reason="NONE",
            list_client_order_id="F4QN4G8DlFATFlIUQ0cjdD",
            transaction_time=1564035303625,
            orders=(
                ListOrder(symbol="ETHBTC", order_id=17, client_order_id="AJYsMjErWJesZvqlJCTUgL"),
                ListOrder(symbol="ETHBTC", order_id=18, client_order_id="bfYPSQdLoqAJeNrOr9adzq"),
            ),
        ),
    ),
    (
        "eventStreamTerminated",
        '{"subscriptionId":0,"event":{"e":"eventStreamTerminated","E":1728973001334}}',
        EventStreamTerminated(event_time=1728973001334),
    ),
    (
        "externalLockUpdate",
        '{"subscriptionId":0,"event":{"e":"externalLockUpdate","E":1581557507324,"a":"NEO","d":"10.00000000","T":1581557507268}}',
        ExternalLockUpdate(
            event_time=1581557507324, asset="NEO", delta=D("10"), clear_time=1581557507268
        ),
    ),
]

FUTURES: list[tuple[str, str, Any]] = [
    (
        "futures aggTrade",
        '{"e":"aggTrade","E":123456789,"s":"BNBUSDT","a":5933014,"p":"0.001","q":"100","nq":"100","f":100,"l":105,"T":123456785,"m":true}',
        AggTrade(
            event_time=123456789,
            symbol="BNBUSDT",
            agg_trade_id=5933014,
            price=D("0.001"),
            quantity=D("100"),
            quantity_excluding_rpi=D("100"),
            first_trade_id=100,
            last_trade_id=105,
            trade_time=123456785,
            buyer_is_maker=True,
        ),
    ),
    (
        "markPriceUpdate",
        '{"e":"markPriceUpdate","E":1562305380000,"s":"BTCUSDT","p":"11794.15000000","i":"11784.62659091","P":"11784.25641265","r":"0.00038167","T":1562306400000}',
        MarkPrice(
            event_time=1562305380000,
            symbol="BTCUSDT",
            mark_price=D("11794.15"),
            index_price=D("11784.62659091"),
            estimated_settle_price=D("11784.25641265"),
            funding_rate=D("0.00038167"),
            next_funding_time=1562306400000,
        ),
    ),
    (
        "continuous_kline",
        '{"e":"continuous_kline","E":1607443058651,"ps":"BTCUSDT","ct":"PERPETUAL","k":{"t":1607443020000,"T":1607443079999,"i":"1m","f":116467658886,"L":116468012423,"o":"18787.00","c":"18804.04","h":"18804.04","l":"18786.54","v":"197.664","n":543,"x":false,"q":"3715253.19494","V":"184.769","Q":"3472925.84746","B":"0"}}',
        ContinuousKline(
            event_time=1607443058651,
            pair="BTCUSDT",
            contract_type="PERPETUAL",
            interval="1m",
            open_time=1607443020000,
            close_time=1607443079999,
            open=D("18787.00"),
            high=D("18804.04"),
            low=D("18786.54"),
            close=D("18804.04"),
            volume=D("197.664"),
            quote_volume=D("3715253.19494"),
            taker_buy_base_volume=D("184.769"),
            taker_buy_quote_volume=D("3472925.84746"),
            trades=543,
            first_trade_id=116467658886,
            last_trade_id=116468012423,
            closed=False,
        ),
    ),
    (
        "futures 24hrTicker",
        '{"e":"24hrTicker","E":123456789,"s":"BNBUSDT","p":"0.0015","P":"250.00","w":"0.0018","c":"0.0025","Q":"10","o":"0.0010","h":"0.0025","l":"0.0010","v":"10000","q":"18","O":0,"C":86400000,"F":0,"L":18150,"n":18151}',
        Ticker(
            event_time=123456789,
            symbol="BNBUSDT",
            price_change=D("0.0015"),
            price_change_percent=D("250.00"),
            weighted_average_price=D("0.0018"),
            last_price=D("0.0025"),
            last_quantity=D("10"),
            open=D("0.0010"),
            high=D("0.0025"),
            low=D("0.0010"),
            volume=D("10000"),
            quote_volume=D("18"),
            open_time=0,
            close_time=86400000,
            first_trade_id=0,
            last_trade_id=18150,
            trades=18151,
        ),
    ),
    (
        "forceOrder",
        '{"e":"forceOrder","E":1568014460893,"o":{"s":"BTCUSDT","S":"SELL","o":"LIMIT","f":"IOC","q":"0.014","p":"9910","ap":"9910","X":"FILLED","l":"0.014","z":"0.014","T":1568014460893}}',
        ForceOrder(
            event_time=1568014460893,
            symbol="BTCUSDT",
            side="SELL",
            order_type="LIMIT",
            time_in_force="IOC",
            quantity=D("0.014"),
            price=D("9910"),
            average_price=D("9910"),
            order_status="FILLED",
            last_filled_quantity=D("0.014"),
            filled_quantity=D("0.014"),
            trade_time=1568014460893,
        ),
    ),
    (
        "futures bookTicker",
        '{"e":"bookTicker","u":400900217,"E":1568014460893,"T":1568014460891,"s":"BNBUSDT","b":"25.35190000","B":"31.21000000","a":"25.36520000","A":"40.66000000"}',
        BookTicker(
            update_id=400900217,
            symbol="BNBUSDT",
            bid_price=D("25.3519"),
            bid_quantity=D("31.21"),
            ask_price=D("25.3652"),
            ask_quantity=D("40.66"),
            event_time=1568014460893,
            transaction_time=1568014460891,
        ),
    ),
    (
        "futures depthUpdate",
        '{"e":"depthUpdate","E":123456789,"T":123456788,"s":"BNBUSDT","U":157,"u":160,"pu":149,"b":[["0.0024","10"]],"a":[["0.0026","100"]]}',
        DepthUpdate(
            event_time=123456789,
            transaction_time=123456788,
            symbol="BNBUSDT",
            first_update_id=157,
            final_update_id=160,
            prev_final_update_id=149,
            bids=((D("0.0024"), D("10")),),
            asks=((D("0.0026"), D("100")),),
        ),
    ),
    (
        "futures partial depth",
        '{"e":"depthUpdate","E":1571889248277,"T":1571889248276,"s":"BTCUSDT","U":390497796,"u":390497878,"pu":390497794,"b":[["7403.89","0.002"],["7403.90","3.906"]],"a":[["7405.96","3.340"],["7406.63","4.525"]]}',
        DepthUpdate(
            event_time=1571889248277,
            transaction_time=1571889248276,
            symbol="BTCUSDT",
            first_update_id=390497796,
            final_update_id=390497878,
            prev_final_update_id=390497794,
            bids=((D("7403.89"), D("0.002")), (D("7403.90"), D("3.906"))),
            asks=((D("7405.96"), D("3.340")), (D("7406.63"), D("4.525"))),
        ),
    ),
    (
        "futures listenKeyExpired (E is a string)",
        '{"e":"listenKeyExpired","E":"1736996475556","listenKey":"WsCMN0a4KHUPTQuX6IUnqEZfB1inxmv1qR4kbf1LuEjur5VdbzqvyxqG9TSjVVxv"}',
        ListenKeyExpired(
            event_time=1736996475556,
            listen_key="WsCMN0a4KHUPTQuX6IUnqEZfB1inxmv1qR4kbf1LuEjur5VdbzqvyxqG9TSjVVxv",
        ),
    ),
    (
        "ACCOUNT_UPDATE",
        '{"e":"ACCOUNT_UPDATE","E":1564745798939,"T":1564745798938,"a":{"m":"ORDER","B":[{"a":"USDT","wb":"122624.12345678","cw":"100.12345678","bc":"50.12345678"}],"P":[{"s":"BTCUSDT","pa":"0","ep":"0.00000","bep":"0","cr":"200","up":"0","mt":"isolated","iw":"0.00000000","ps":"BOTH"},{"s":"BTCUSDT","pa":"20","ep":"6563.66500","bep":"6563.6","cr":"0","up":"2850.21200","mt":"isolated","iw":"13200.70726908","ps":"LONG"}]}}',
        AccountUpdate(
            event_time=1564745798939,
            transaction_time=1564745798938,
            reason="ORDER",
            balances=(
                FuturesBalance(
                    asset="USDT",
                    wallet_balance=D("122624.12345678"),
                    cross_wallet_balance=D("100.12345678"),
                    balance_change=D("50.12345678"),
                ),
            ),
            positions=(
                FuturesPosition(
                    symbol="BTCUSDT",
                    position_amount=D("0"),
                    entry_price=D("0"),
                    breakeven_price=D("0"),
                    accumulated_realized=D("200"),
                    unrealized_pnl=D("0"),
                    margin_type="isolated",
                    isolated_wallet=D("0"),
                    position_side="BOTH",
                ),
                FuturesPosition(
                    symbol="BTCUSDT",
                    position_amount=D("20"),
                    entry_price=D("6563.665"),
                    breakeven_price=D("6563.6"),
                    accumulated_realized=D("0"),
                    unrealized_pnl=D("2850.212"),
                    margin_type="isolated",
                    isolated_wallet=D("13200.70726908"),
                    position_side="LONG",
                ),
            ),
        ),
    ),
    (
        "ORDER_TRADE_UPDATE",
        '{"e":"ORDER_TRADE_UPDATE","E":1568879465651,"T":1568879465650,"o":{"s":"BTCUSDT","c":"TEST","S":"SELL","o":"LIMIT","f":"GTC","q":"0.001","p":"9910","ap":"0","sp":"0","x":"NEW","X":"NEW","i":8886774,"l":"0","z":"0","L":"0","N":"USDT","n":"0","T":1568879465650,"t":0,"b":"0","a":"9.91","m":false,"R":false,"wt":"CONTRACT_PRICE","ot":"LIMIT","ps":"BOTH","cp":false,"rp":"0","pP":false,"si":0,"ss":0,"V":"EXPIRE_TAKER","pm":"NONE","gtd":0,"er":"0"}}',
        OrderTradeUpdate(
            event_time=1568879465651,
            transaction_time=1568879465650,
            symbol="BTCUSDT",
            client_order_id="TEST",
            side="SELL",
            order_type="LIMIT",
            time_in_force="GTC",
            quantity=D("0.001"),
            price=D("9910"),
            average_price=D("0"),
            stop_price=D("0"),
            execution_type="NEW",
            order_status="NEW",
            order_id=8886774,
            last_filled_quantity=D("0"),
            filled_quantity=D("0"),
            last_filled_price=D("0"),
            commission_asset="USDT",
            commission=D("0"),
            trade_time=1568879465650,
            trade_id=0,
            bids_notional=D("0"),
            asks_notional=D("9.91"),
            is_maker=False,
            is_reduce_only=False,
            working_type="CONTRACT_PRICE",
            original_order_type="LIMIT",
            position_side="BOTH",
            close_position=False,
            realized_profit=D("0"),
            price_protection=False,
            self_trade_prevention_mode="EXPIRE_TAKER",
            price_match="NONE",
            good_till_date=0,
            expiry_reason="0",
        ),
    ),
]

REFERENCE = SPOT_MARKET + SPOT_USER + FUTURES
IDS = [row[0] for row in REFERENCE]
_BY_NAME = {row[0]: row for row in REFERENCE}


def payload(name: str) -> Any:
    """A fresh decoded copy of the reference payload called ``name``."""
    return j(_BY_NAME[name][1])


def expected(name: str) -> Any:
    """The model the reference payload called ``name`` must give."""
    return _BY_NAME[name][2]


def _inner(payload: Any) -> Any:
    """The event object inside a combined or user-data wrapper."""
    if "data" in payload:
        return payload["data"]
    if "event" in payload:
        return payload["event"]
    return payload


@pytest.mark.parametrize(("name", "text", "expected"), REFERENCE, ids=IDS)
def test_reference_payload_parses_into_its_model(name: str, text: str, expected: Any) -> None:
    result = parse(j(text))
    assert type(result) is type(expected)
    assert result == expected


@pytest.mark.parametrize(("name", "text", "expected"), REFERENCE, ids=IDS)
def test_from_dict_of_the_model_gives_the_same(name: str, text: str, expected: Any) -> None:
    assert type(expected).from_dict(_inner(j(text))) == expected


@pytest.mark.parametrize(("name", "text", "expected"), REFERENCE, ids=IDS)
def test_unknown_keys_are_tolerated(name: str, text: str, expected: Any) -> None:
    payload = _inner(j(text))
    payload.update({"zz": 1, "newField": {"x": [1, 2]}, "ST": None})
    if "k" in payload:  # and inside a nested object too
        payload["k"]["zz"] = "?"
    assert parse(payload) == expected


def test_spot_partial_depth_takes_its_symbol_from_the_stream_name() -> None:
    payload = j('{"lastUpdateId":160,"bids":[["0.0024","10"]],"asks":[["0.0026","100"]]}')
    assert parse(payload).symbol is None  # type: ignore[union-attr]
    from_stream = parse(payload, "bnbbtc@depth5@100ms")
    assert isinstance(from_stream, PartialDepth)
    assert from_stream.symbol == "BNBBTC"
    wrapped = parse({"stream": "ethbtc@depth20", "data": payload})
    assert isinstance(wrapped, PartialDepth)
    assert wrapped.symbol == "ETHBTC"
    assert parser_for("bnbbtc@depth10")(payload) == from_stream
    assert PartialDepth.from_dict(payload, symbol="XY").symbol == "XY"


def test_arrays_parse_into_lists_of_models() -> None:
    mini = payload("24hrMiniTicker")
    other = dict(mini, s="ETHBTC")
    result = parse([mini, other])
    assert result == [
        expected("24hrMiniTicker"),
        dataclasses.replace(expected("24hrMiniTicker"), symbol="ETHBTC"),
    ]
    assert parse({"stream": "!miniTicker@arr", "data": [mini, other]}) == result
    assert parser_for("!miniTicker@arr")([mini, other]) == result
    assert parse([]) == []


def test_funding_rate_sent_empty_is_none() -> None:
    mark = payload("markPriceUpdate")
    mark["r"] = ""
    assert MarkPrice.from_dict(mark).funding_rate is None


def test_account_update_without_positions_gives_an_empty_tuple() -> None:
    payload = j(
        '{"e":"ACCOUNT_UPDATE","E":1,"T":2,"a":{"m":"FUNDING_FEE","S":"BTCUSDT",'
        '"B":[{"a":"USDT","wb":"1","cw":"1","bc":"-0.1"}]}}'
    )
    update = parse(payload)
    assert isinstance(update, AccountUpdate)
    assert update.positions == ()
    assert update.symbol == "BTCUSDT"
    assert update.balances[0].balance_change == D("-0.1")


def test_execution_report_conditional_fields() -> None:
    report_payload = _inner(payload("executionReport"))
    report_payload.update(
        {"d": 4, "D": "1668680518494", "j": 1, "J": 1000000, "A": "3.000", "B": "3.000"}
    )
    report_payload.update(
        {"Cs": "BTCUSDT", "pl": "0.1", "pL": "25000.5", "pY": "2500.05", "uS": True}
    )
    report_payload.update({"gP": "PRIMARY_PEG", "gOT": "PRICE_LEVEL", "gOV": 5, "gp": "1.5"})
    report_payload.update({"eR": "EXCHANGE_CANCELED", "b": "ONE_PARTY_TRADE_REPORT", "a": 1234})
    report = ExecutionReport.from_dict(report_payload)
    assert report.trailing_delta == 4
    assert report.trailing_time == 1668680518494  # a time: digit strings accepted
    assert report.trailing_dt == datetime(2022, 11, 17, 10, 21, 58, 494000, tzinfo=UTC)
    assert (report.strategy_id, report.strategy_type) == (1, 1000000)
    assert report.prevented_quantity == report.last_prevented_quantity == D("3")
    assert report.counter_symbol == "BTCUSDT"
    assert report.prevented_execution_price == D("25000.5")
    assert report.used_sor is True
    assert (report.peg_price_type, report.peg_offset_value) == ("PRIMARY_PEG", 5)
    assert report.pegged_price == D("1.5")
    assert report.expiry_reason == "EXCHANGE_CANCELED"
    assert (report.match_type, report.allocation_id) == ("ONE_PARTY_TRADE_REPORT", 1234)


# ---------------------------------------------------------------------------------------------
# Real captures


def _capture_frames() -> list[dict[str, Any]]:
    lines = (CAPTURES / "binance-spot.ws.txt").read_text().splitlines()[1:]
    return [json.loads(line.partition(": ")[2]) for line in lines if line]


STREAM_MODELS = {"depth@100ms": DepthUpdate, "bookTicker": BookTicker, "kline_1m": Kline}
STREAM_MODELS["aggTrade"] = AggTrade


def test_every_captured_frame_parses() -> None:
    seen: dict[type, int] = {}
    for frame in _capture_frames():
        kind = frame["stream"].partition("@")[2]
        model = parse(frame)
        assert type(model) is STREAM_MODELS[kind], frame
        # The per-stream fast parser gives exactly what parse gives.
        assert parser_for(frame["stream"])(frame["data"]) == model
        assert model.symbol == frame["stream"].partition("@")[0].upper()  # type: ignore[union-attr]
        seen[type(model)] = seen.get(type(model), 0) + 1
    assert seen == {DepthUpdate: 177, BookTicker: 84, AggTrade: 2, Kline: 2}


def test_captured_values() -> None:
    frames = _capture_frames()
    first = parse(frames[0])
    assert first == DepthUpdate(
        event_time=1633998512068,
        symbol="NKNUSDT",
        first_update_id=499869750,
        final_update_id=499869752,
        bids=(
            (D("0.3513"), D("6195")),
            (D("0.3475"), D("5548")),
            (D("0.3464"), D("6222")),
        ),
        asks=(),
    )
    agg = next(parse(f) for f in frames if f["stream"] == "nknusdt@aggTrade")
    assert agg == AggTrade(
        event_time=1633998523963,
        symbol="NKNUSDT",
        agg_trade_id=15683430,
        price=D("0.3528"),
        quantity=D("58"),
        first_trade_id=19862790,
        last_trade_id=19862790,
        trade_time=1633998523963,
        buyer_is_maker=False,
    )
    kline = next(parse(f) for f in frames if f["stream"] == "lrcbtc@kline_1m")
    assert isinstance(kline, Kline)
    assert (kline.open_time, kline.trades, kline.closed) == (1633998480000, 1, False)
    assert kline.quote_volume == D("0.00112926")
    assert kline.open_dt == datetime(2021, 10, 12, 0, 28, tzinfo=UTC)


def test_captured_rest_snapshots_parse_as_partial_depth() -> None:
    for line in (CAPTURES / "binance-spot.http.txt").read_text().splitlines():
        if not line:
            continue
        rest = line.partition(" -> ")[2]
        body = json.loads(rest.partition(": ")[2])
        depth = PartialDepth.from_dict(body)
        assert depth.last_update_id == body["lastUpdateId"]
        assert len(depth.bids) == len(body["bids"]) > 0
        assert depth.asks[0] == (D(body["asks"][0][0]), D(body["asks"][0][1]))


# ---------------------------------------------------------------------------------------------
# Malformed payloads

TRADE = payload("trade")
KLINE = payload("kline")
DEPTH = payload("depthUpdate")
POSITION = _inner(payload("outboundAccountPosition"))
ACCOUNT = payload("ACCOUNT_UPDATE")
ORDER = payload("ORDER_TRADE_UPDATE")


def _without(payload: dict[str, Any], key: str) -> dict[str, Any]:
    copy = json.loads(json.dumps(payload))
    container = copy
    parts = key.split(".")
    for part in parts[:-1]:
        container = container[part]
    del container[parts[-1]]
    return copy


def _with(payload: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    copy = json.loads(json.dumps(payload))
    container = copy
    parts = key.split(".")
    for part in parts[:-1]:
        container = container[part]
    container[parts[-1]] = value
    return copy


MALFORMED: list[tuple[str, Any, type, str]] = [
    # (id, payload, model, exact message)
    (
        "price None",
        _with(TRADE, "p", None),
        Trade,
        "trade: field 'p' (price): expected a decimal string, got None",
    ),
    ("price missing", _without(TRADE, "p"), Trade, "trade: field 'p' (price): missing"),
    (
        "price not numeric",
        _with(TRADE, "p", "abc"),
        Trade,
        "trade: field 'p' (price): expected a decimal string, got 'abc'",
    ),
    (
        "price a JSON number",
        _with(TRADE, "p", 0.001),
        Trade,
        "trade: field 'p' (price): expected a decimal string, got 0.001",
    ),
    (
        "price NaN",
        _with(TRADE, "q", "NaN"),
        Trade,
        "trade: field 'q' (quantity): expected a decimal string, got 'NaN'",
    ),
    (
        "price empty",
        _with(TRADE, "q", ""),
        Trade,
        "trade: field 'q' (quantity): expected a decimal string, got ''",
    ),
    (
        "id as a string",
        _with(TRADE, "t", "12345"),
        Trade,
        "trade: field 't' (trade_id): expected an integer, got '12345'",
    ),
    (
        "time as a bool",
        _with(TRADE, "E", True),
        Trade,
        "trade: field 'E' (event_time): expected an integer or a string of digits "
        "(epoch milliseconds), got True",
    ),
    (
        "time as a float",
        _with(TRADE, "T", 1.5),
        Trade,
        "trade: field 'T' (trade_time): expected an integer or a string of digits "
        "(epoch milliseconds), got 1.5",
    ),
    (
        "bool as a string",
        _with(TRADE, "m", "true"),
        Trade,
        "trade: field 'm' (buyer_is_maker): expected a boolean, got 'true'",
    ),
    (
        "symbol as a number",
        _with(TRADE, "s", 5),
        Trade,
        "trade: field 's' (symbol): expected a string, got 5",
    ),
    ("not an object", [1, 2], Trade, "trade: expected a JSON object, got [1, 2]"),
    ("nested missing", _without(KLINE, "k.o"), Kline, "kline: field 'k.o' (open): missing"),
    ("nested parent missing", _without(KLINE, "k"), Kline, "kline: field 'k' (interval): missing"),
    (
        "nested parent not an object",
        _with(KLINE, "k", [1]),
        Kline,
        "kline: field 'k' (interval): expected a JSON object, got [1]",
    ),
    (
        "nested bad value",
        _with(KLINE, "k.x", 0),
        Kline,
        "kline: field 'k.x' (closed): expected a boolean, got 0",
    ),
    (
        "level not numeric",
        _with(DEPTH, "b", [["0.0024", "10"], ["0.0023", "x"]]),
        DepthUpdate,
        "depthUpdate: field 'b[1]' (bids[1]): expected a [price, quantity] pair of decimal "
        "strings, got ['0.0023', 'x']",
    ),
    (
        "level not a pair",
        _with(DEPTH, "a", [["0.0026", "100", "7"]]),
        DepthUpdate,
        "depthUpdate: field 'a[0]' (asks[0]): expected a [price, quantity] pair of decimal "
        "strings, got ['0.0026', '100', '7']",
    ),
    (
        "level numbers",
        _with(DEPTH, "a", [[0.0026, 100]]),
        DepthUpdate,
        "depthUpdate: field 'a[0]' (asks[0]): expected a [price, quantity] pair of decimal "
        "strings, got [0.0026, 100]",
    ),
    (
        "levels not an array",
        _with(DEPTH, "b", {"0.0024": "10"}),
        DepthUpdate,
        "depthUpdate: field 'b' (bids): expected an array of [price, quantity] pairs, "
        "got {'0.0024': '10'}",
    ),
    (
        "nested list item",
        _with(POSITION, "B", [{"a": "ETH", "f": "1", "l": "0"}, {"a": "BTC", "f": 1, "l": "0"}]),
        AccountPosition,
        "outboundAccountPosition: field 'B[1].f' (balances[1].free): expected a decimal "
        "string, got 1",
    ),
    (
        "nested list not an array",
        _with(POSITION, "B", {"a": "ETH"}),
        AccountPosition,
        "outboundAccountPosition: field 'B' (balances): expected an array, got {'a': 'ETH'}",
    ),
    (
        "nested list item not an object",
        _with(POSITION, "B", ["ETH"]),
        AccountPosition,
        "outboundAccountPosition: field 'B[0]' (balances[0]): expected a JSON object, got 'ETH'",
    ),
    (
        "deep nested list item",
        _with(ACCOUNT, "a.P", [{"s": "BTCUSDT"}]),
        AccountUpdate,
        "ACCOUNT_UPDATE: field 'a.P[0].pa' (positions[0].position_amount): missing",
    ),
    (
        "flattened order field",
        _with(ORDER, "o.i", "8886774"),
        OrderTradeUpdate,
        "ORDER_TRADE_UPDATE: field 'o.i' (order_id): expected an integer, got '8886774'",
    ),
    (
        "time string not digits",
        _with(payload("futures listenKeyExpired (E is a string)"), "E", "1736996475556.5"),
        ListenKeyExpired,
        "listenKeyExpired: field 'E' (event_time): expected an integer or a string of digits "
        "(epoch milliseconds), got '1736996475556.5'",
    ),
    (
        "optional field of the wrong type",
        _with(payload("futures aggTrade"), "nq", 100),
        AggTrade,
        "aggTrade: field 'nq' (quantity_excluding_rpi): expected a decimal string, got 100",
    ),
    (
        "rolling ticker window",
        _with(payload("1hTicker"), "e", "1hTick"),
        RollingTicker,
        "rollingTicker: field 'e' (window): expected '<window>Ticker', got '1hTick'",
    ),
]


@pytest.mark.parametrize(
    ("name", "payload", "model", "message"), MALFORMED, ids=[m[0] for m in MALFORMED]
)
def test_malformed_payload_raises_parse_error_naming_event_and_field(
    name: str, payload: Any, model: Any, message: str
) -> None:
    with pytest.raises(ParseError) as caught:
        model.from_dict(payload)
    assert str(caught.value) == message
    assert isinstance(caught.value, ValueError)
    if isinstance(payload, dict) and "e" in payload and model is not RollingTicker:
        with pytest.raises(ParseError) as via_parse:
            parse(payload)
        assert str(via_parse.value) == message


def test_parse_error_attributes_and_pickling() -> None:
    with pytest.raises(ParseError) as caught:
        parse(_with(POSITION, "B", [{"a": "ETH", "f": "x", "l": "0"}]))
    error = caught.value
    assert (error.event, error.field, error.attribute) == (
        "outboundAccountPosition",
        "B[0].f",
        "balances[0].free",
    )
    assert error.reason == "expected a decimal string, got 'x'"
    copy = pickle.loads(pickle.dumps(error))
    assert (str(copy), copy.field, copy.attribute) == (str(error), error.field, error.attribute)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"e": "contractInfo", "E": 1}, "contractInfo: unknown event type"),
        ({"e": "TRADE_LITE", "E": 1}, "TRADE_LITE: unknown event type"),
        ({"e": 7}, "7: unknown event type"),
        ({"result": None, "id": 1}, "event: no event type 'e' and not a known payload shape"),
        ("text", "event: expected a JSON object, got 'text'"),
        ([1], "event: expected a JSON object, got 1"),
        ({"stream": 3, "data": {}}, "stream: expected a stream name string, got 3"),
    ],
)
def test_parse_refuses_what_it_does_not_know(payload: Any, message: str) -> None:
    with pytest.raises(ParseError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        parse(payload)


def test_reference_payloads_parse_does_not_model_raise_unknown() -> None:
    # Reference payloads outside the brief's list are refused, not misparsed.
    for text in [
        '{"e":"compositeIndex","E":1602310596000,"s":"DEFIUSDT","p":"554.41604065","C":"baseAsset","c":[]}',
        '[{"e":"assetIndexUpdate","E":1686749230000,"s":"ADAUSD","i":"0.27462452"}]',
    ]:
        with pytest.raises(ParseError, match="unknown event type"):
            parse(j(text))


# ---------------------------------------------------------------------------------------------
# parser_for

PARSER_CASES: list[tuple[str, Any, Any]] = [
    ("btcusdt@aggTrade", payload("aggTrade"), expected("aggTrade")),
    ("btcusdt@aggTrade", payload("futures aggTrade"), expected("futures aggTrade")),
    ("bnbbtc@trade", payload("trade"), expected("trade")),
    ("bnbbtc@blockTrade", payload("blockTrade"), expected("blockTrade")),
    ("bazusd@referencePrice", payload("referencePrice"), expected("referencePrice")),
    ("bnbbtc@kline_1m", payload("kline"), expected("kline")),
    ("bnbbtc@kline_1d@+08:00", payload("kline"), expected("kline")),
    (
        "btcusdt_perpetual@continuousKline_1m",
        payload("continuous_kline"),
        expected("continuous_kline"),
    ),
    ("bnbbtc@miniTicker", payload("24hrMiniTicker"), expected("24hrMiniTicker")),
    ("bnbbtc@ticker", payload("24hrTicker"), expected("24hrTicker")),
    ("bnbusdt@ticker", payload("futures 24hrTicker"), expected("futures 24hrTicker")),
    ("bnbbtc@ticker_1h", payload("1hTicker"), expected("1hTicker")),
    ("!ticker_1h@arr", [payload("1hTicker")], [expected("1hTicker")]),
    ("bnbusdt@bookTicker", payload("bookTicker"), expected("bookTicker")),
    ("bnbusdt@bookTicker", payload("futures bookTicker"), expected("futures bookTicker")),
    ("!bookTicker", payload("futures bookTicker"), expected("futures bookTicker")),
    ("btcusdt@avgPrice", payload("avgPrice"), expected("avgPrice")),
    ("bnbbtc@depth", payload("depthUpdate"), expected("depthUpdate")),
    ("bnbbtc@depth@100ms", payload("depthUpdate"), expected("depthUpdate")),
    ("bnbusdt@depth@500ms", payload("futures depthUpdate"), expected("futures depthUpdate")),
    ("bnbusdt@rpiDepth@500ms", payload("futures depthUpdate"), expected("futures depthUpdate")),
    (
        "btcusdt@depth5@100ms",
        payload("futures partial depth"),
        expected("futures partial depth"),
    ),  # futures partial depth
    (
        "bnbbtc@depth20@100ms",
        payload("partial depth"),
        dataclasses.replace(expected("partial depth"), symbol="BNBBTC"),
    ),
    ("btcusdt@markPrice@1s", payload("markPriceUpdate"), expected("markPriceUpdate")),
    ("!markPrice@arr@1s", [payload("markPriceUpdate")], [expected("markPriceUpdate")]),
    ("!markPrice@arr", [payload("markPriceUpdate")], [expected("markPriceUpdate")]),
    ("btcusdt@forceOrder", payload("forceOrder"), expected("forceOrder")),
    (
        "!forceOrder@arr",
        payload("forceOrder"),
        expected("forceOrder"),
    ),  # single events despite the name
    ("!miniTicker@arr", [payload("24hrMiniTicker")], [expected("24hrMiniTicker")]),
    ("!serverShutdown", payload("serverShutdown"), expected("serverShutdown")),
    # Not the stream's own event: falls back to parse.
    ("btcusdt@trade", payload("serverShutdown"), expected("serverShutdown")),
    (
        "bnbbtc@depth@100ms",
        payload("combined wrapper"),
        expected("combined wrapper"),
    ),  # a combined wrapper
    ("bnbbtc@depth5", payload("combined wrapper"), expected("combined wrapper")),
    ("btcusdt@bookTicker", payload("serverShutdown combined"), expected("serverShutdown combined")),
    # Unknown stream names (a listen key): parse itself.
    (
        "pqia91ma19a5s61cv6a81va65sdf19v8a",
        payload("ORDER_TRADE_UPDATE"),
        expected("ORDER_TRADE_UPDATE"),
    ),
    ("pqia91ma19a5s61cv6a81va65sdf19v8a", payload("executionReport"), expected("executionReport")),
]


@pytest.mark.parametrize(("stream", "payload", "expected"), PARSER_CASES)
def test_parser_for(stream: str, payload: Any, expected: Any) -> None:
    result = parser_for(stream)(payload)
    assert result == expected
    assert type(result) is type(expected)


def test_parser_for_still_validates() -> None:
    with pytest.raises(ParseError, match=r"^trade: field 'p' \(price\): missing$"):
        parser_for("btcusdt@trade")(_without(TRADE, "p"))
    with pytest.raises(ParseError, match="unknown event type"):
        parser_for("btcusdt@trade")({"e": "nope"})
    with pytest.raises(ParseError, match=r"^24hrMiniTicker: field 'c' \(close\): missing$"):
        parser_for("!miniTicker@arr")([_without(payload("24hrMiniTicker"), "c")])


# ---------------------------------------------------------------------------------------------
# Model properties


MODEL_CLASSES = [
    getattr(models, name)
    for name in models.__all__
    if isinstance(getattr(models, name), type) and dataclasses.is_dataclass(getattr(models, name))
]


def test_every_event_type_of_the_brief_is_modelled() -> None:
    names = {cls.__name__ for cls in MODEL_CLASSES}
    assert names >= {
        "Trade",
        "AggTrade",
        "Kline",
        "MiniTicker",
        "Ticker",
        "RollingTicker",
        "BookTicker",
        "AvgPrice",
        "DepthUpdate",
        "PartialDepth",
        "ExecutionReport",
        "AccountPosition",
        "BalanceUpdate",
        "ListStatus",
        "ExternalLockUpdate",
        "EventStreamTerminated",
        "MarkPrice",
        "ForceOrder",
        "AccountUpdate",
        "OrderTradeUpdate",
        "ListenKeyExpired",
        "ServerShutdownNotice",
        "ContinuousKline",
        "ReferencePrice",
        "BlockTrade",
    }


@pytest.mark.parametrize("cls", MODEL_CLASSES, ids=lambda c: c.__name__)
def test_models_are_frozen_and_slotted(cls: type) -> None:
    params = cls.__dataclass_params__  # type: ignore[attr-defined]
    assert params.frozen
    assert "__slots__" in cls.__dict__
    assert cls.__dictoffset__ == 0  # type: ignore[attr-defined]  # no per-instance __dict__


@pytest.mark.parametrize(("name", "text", "expected"), REFERENCE, ids=IDS)
def test_instances_are_immutable_and_hashable(name: str, text: str, expected: Any) -> None:
    model = parse(j(text))
    first = dataclasses.fields(model)[0].name  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(model, first, None)
    with pytest.raises((AttributeError, TypeError)):
        model.extra = 1  # type: ignore[union-attr]
    assert hash(model) == hash(expected)
    # Nothing but the declared fields is kept.
    assert not hasattr(model, "__dict__")


def test_datetime_properties_are_aware_utc_and_exact() -> None:
    trade = parse(payload("trade"))
    assert isinstance(trade, Trade)
    assert trade.event_dt == datetime(2022, 12, 31, 19, 43, 2, 136000, tzinfo=UTC)
    assert trade.event_dt.tzinfo is UTC
    assert trade.trade_dt == trade.event_dt
    # A millisecond that a float division would round: 1672515782999 ms.
    late = Trade.from_dict(_with(TRADE, "T", 1672515782999))
    assert late.trade_dt.microsecond == 999000
    expired = parse(payload("futures listenKeyExpired (E is a string)"))
    assert isinstance(expired, ListenKeyExpired)
    assert expired.event_dt == datetime(2025, 1, 16, 3, 1, 15, 556000, tzinfo=UTC)
    spot_ticker = parse(payload("bookTicker"))
    assert isinstance(spot_ticker, BookTicker)
    assert spot_ticker.event_dt is None
    futures_ticker = parse(payload("futures bookTicker"))
    assert isinstance(futures_ticker, BookTicker)
    assert futures_ticker.transaction_dt == datetime(2019, 9, 9, 7, 34, 20, 891000, tzinfo=UTC)
    kline = parse(payload("kline"))
    assert isinstance(kline, Kline)
    assert kline.close_dt - kline.open_dt == (kline.close_time - kline.open_time) * (
        datetime(1970, 1, 1, 0, 0, 0, 1000, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    )


def test_every_time_field_has_a_datetime_property() -> None:
    for cls in MODEL_CLASSES:
        for field in dataclasses.fields(cls):
            if field.name.endswith("_time"):
                dt_name = field.name[: -len("_time")] + "_dt"
                assert hasattr(cls, dt_name), f"{cls.__name__}.{dt_name}"


def test_decimal_levels_and_nested_parts_are_tuples() -> None:
    depth = parse(payload("depthUpdate"))
    assert isinstance(depth, DepthUpdate)
    assert type(depth.bids) is tuple
    assert type(depth.bids[0]) is tuple
    assert all(type(x) is Decimal for level in depth.bids + depth.asks for x in level)
    listing = parse(payload("listStatus"))
    assert isinstance(listing, ListStatus)
    assert type(listing.orders) is tuple


def test_decimals_keep_the_exact_value_sent() -> None:
    depth = DepthUpdate.from_dict(_with(DEPTH, "b", [["0.10000000", "1.23456789012345678"]]))
    price, qty = depth.bids[0]
    assert str(price) == "0.10000000"
    assert qty == D("1.23456789012345678")
