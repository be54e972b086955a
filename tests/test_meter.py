"""Meter: per-second rates, sampled lag and age of one stream, on a clock the test moves."""

from __future__ import annotations

import pytest

from rxbinance._reactive.meter import LAG_SAMPLES_PER_SECOND, Meter, MeterReading, combine


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def trade(event_ms: float) -> dict[str, object]:
    return {"e": "trade", "E": int(event_ms), "t": 1}


T = 1_800_000_000.0  # a whole second, epoch seconds


def test_nothing_received_reads_empty() -> None:
    reading = Meter(Clock(T)).reading()
    assert reading == MeterReading(0.0, 0.0, None, None, None)


def test_rates_count_the_last_whole_second_and_the_last_minute() -> None:
    clock = Clock(T)
    meter = Meter(clock)
    for second in range(3):  # 10, 20, 30 messages in three consecutive seconds
        for i in range(10 * (second + 1)):
            clock.now = T + second + i / 100
            meter.record(1, trade(clock.now * 1000 - 5))
    clock.now = T + 3.5
    reading = meter.reading()
    assert reading.rate_1s == 30  # the second T+2
    assert reading.rate_60s == pytest.approx(60 / 4)  # 60 messages over the 4 s since T
    assert reading.last_message_age == pytest.approx(3.5 - 2.29)
    assert reading.lag_p50_ms == pytest.approx(5, abs=0.01)
    # A minute later the old seconds have left the window; a quiet second counts 0.
    clock.now = T + 120
    assert meter.reading().rate_1s == 0
    assert meter.reading().rate_60s == 0
    assert meter.reading().lag_p99_ms is None


def test_lag_is_sampled_a_bounded_number_of_times_a_second() -> None:
    clock = Clock(T)
    meter = Meter(clock)
    for i in range(1000):
        clock.now = T + i / 1000
        meter.record(1, trade(clock.now * 1000 - (1 if i < LAG_SAMPLES_PER_SECOND else 500)))
    clock.now = T + 1.2
    reading = meter.reading()
    assert reading.rate_1s == 1000
    # Only the first LAG_SAMPLES_PER_SECOND of the second were sampled (all with 1 ms lag).
    assert reading.lag_p99_ms == pytest.approx(1, abs=0.01)


@pytest.mark.parametrize(
    ("message", "lag"),
    [
        ({"e": "aggTrade", "E": 1_000}, 500.0),
        ({"stream": "btcusdt@aggTrade", "data": {"e": "aggTrade", "E": 1_000}}, 500.0),
        ({"u": 1, "s": "BTCUSDT", "b": "1", "B": "1", "a": "2", "A": "1"}, None),  # no E
        ([{"e": "24hrMiniTicker", "E": 1_000}], None),  # an array: not sampled
        ({"e": "trade", "E": "1000"}, None),  # E of the wrong type
    ],
)
def test_lag_reads_e_of_payloads_and_wrappers(message: object, lag: float | None) -> None:
    clock = Clock(1.5)
    meter = Meter(clock)
    meter.record(1, message)
    assert meter.reading().lag_p50_ms == lag


def test_combine_takes_the_busiest_rates_the_best_lag_and_the_freshest_message() -> None:
    a = MeterReading(10.0, 8.0, 5.0, 9.0, 0.5)
    b = MeterReading(12.0, 7.0, 3.0, 11.0, 0.2)
    c = MeterReading(0.0, 0.0, None, None, None)
    assert combine([a, b, c]) == MeterReading(12.0, 8.0, 3.0, 9.0, 0.2)


def test_a_read_of_many_messages_counts_them_all_and_samples_one() -> None:
    clock = Clock(T)
    meter = Meter(clock)
    meter.record(250, trade(T * 1000 - 7))  # one read brought 250 messages
    clock.now = T + 1.5
    reading = meter.reading()
    assert reading.rate_1s == 250
    assert reading.lag_p50_ms == pytest.approx(7, abs=0.01)
