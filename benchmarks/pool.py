"""What pooling costs and saves: ``python benchmarks/pool.py``.

1. **Routing**: the per-message cost of delivering 200 streams' trades to their subscribers,
   pooled (one connection: the combined-stream wrapper is routed to the right stream's hub
   entry) versus one socket per stream key (each socket's messages go straight to its entry).
   Measured in process through :class:`rxbinance.testing.ScriptedTransport` (no JSON, no
   network: ``throughput.py`` measures those), CPU time per message, best of ``--repeat``.
   The ratio pooled / per key is the routing overhead.
2. **Resources**: 1,000 streams against a local FakeBinance, pooled versus one socket each:
   connections, reader threads of ours, and the Python memory the streams hold once every
   stream is live (tracemalloc, client side only: the fake runs in the same process but its
   allocations are measured separately and subtracted).

Prints one table and a last line with the figures. Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import gc
import sys
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rxbinance import BinanceStreams
from rxbinance.testing import FakeBinance, ScriptedSocket, ScriptedTransport

STREAMS = 200
KINDS = ("trade", "aggTrade", "bookTicker", "kline_1s", "kline_1m", "depth@100ms", "miniTicker")


def _names(count: int) -> list[str]:
    symbols = [f"s{i:03d}usdt" for i in range(count // len(KINDS) + 1)]
    return [f"{s}@{kind}" for s in symbols for kind in KINDS][:count]


def _trades(count: int, streams: int) -> list[tuple[int, dict[str, Any]]]:
    """(stream index, trade payload) in a round robin over the streams."""
    out = []
    for i in range(count):
        index = i % streams
        out.append(
            (
                index,
                {"e": "trade", "E": 1, "s": f"S{index:03d}USDT", "t": i // streams + 1,
                 "p": "1.0", "q": "1", "T": 1, "m": True, "M": True},
            )
        )  # fmt: skip
    return out


def _counter(received: list[int]) -> Any:
    def count(_: Any) -> None:
        received[0] += 1

    return count


def _route(pool: bool, messages: list[tuple[int, dict[str, Any]]], repeat: int) -> float:
    """Best CPU seconds per message to deliver ``messages`` to 200 trade subscribers."""
    names = [f"s{i:03d}usdt@trade" for i in range(STREAMS)]
    best = float("inf")
    for _ in range(repeat):
        transport = ScriptedTransport()
        received = [0]
        count = _counter(received)

        with BinanceStreams(
            ws_url="ws://127.0.0.1:9", transport=transport, pool=pool, connection_attempts=None
        ) as s:
            subs = [s.stream(name).subscribe(count) for name in names]
            if pool:
                (sock,) = transport.sockets
                sock.connected()
                wrapped = [({"stream": names[i], "data": m}) for i, m in messages]
                deliver = sock.deliver
                gc.collect()
                started = time.process_time()
                for message in wrapped:
                    deliver(message)
            else:
                sockets: list[ScriptedSocket] = list(transport.sockets)
                for sock in sockets:
                    sock.connected()
                delivers = [sock.deliver for sock in sockets]
                gc.collect()
                started = time.process_time()
                for index, message in messages:
                    delivers[index](message)
            elapsed = time.process_time() - started
            for sub in subs:
                sub.dispose()
        assert received[0] == len(messages), (received[0], len(messages))
        best = min(best, elapsed / len(messages))
    return best


def _resources(pool: bool, count: int) -> tuple[int, int, float]:
    """(connections, our reader threads, client MiB) with ``count`` live streams."""
    names = _names(count)
    symbols = sorted({n.split("@")[0].upper() for n in names})
    with FakeBinance(symbols=symbols, tick_interval=None, max_streams=1024) as fake:
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.take_snapshot()
        streams = BinanceStreams(
            ws_url=fake.ws_url, rest_url=fake.rest_url, pool=pool, connection_attempts=None
        )
        subs = [streams.stream(name).subscribe(lambda _: None) for name in names]
        fake.wait_for(
            lambda f: sum(len(c.streams) for c in f.connections if c.closed_at is None) == count,
            timeout=300,
        )
        gc.collect()
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
        client = sum(
            stat.size_diff
            for stat in after.compare_to(before, "filename")
            if "/rxbinance/testing/" not in stat.traceback[0].filename
            and "websockets" not in stat.traceback[0].filename
        )
        connections = len([c for c in fake.connections if c.closed_at is None])
        readers = len([t for t in threading.enumerate() if t.name.startswith("rxbinance:")])
        for sub in subs:
            sub.dispose()
        streams.close()
    return connections, readers, client / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000, help="routed per run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case, best kept")
    parser.add_argument("--streams", type=int, default=1000, help="for the resources part")
    args = parser.parse_args()

    messages = _trades(args.messages, STREAMS)
    per_key = _route(False, messages, args.repeat)
    pooled = _route(True, messages, args.repeat)
    print(f"routing, {STREAMS} trade streams, {args.messages:,} messages, CPU per message:")
    print(f"  one socket per key   {per_key * 1e6:6.2f} us")
    print(f"  pooled (1 socket)    {pooled * 1e6:6.2f} us   ({pooled / per_key:.2f}x)")

    print(f"resources, {args.streams} live streams:")
    rows = []
    for pool in (True, False):
        connections, readers, mib = _resources(pool, args.streams)
        rows.append((pool, connections, readers, mib))
        label = "pooled          " if pool else "one socket each "
        print(f"  {label} connections {connections:5}  reader threads {readers:5}  "
              f"client memory {mib:7.1f} MiB")  # fmt: skip
    (_, pc, pt, pm), (_, sc, st, sm) = rows
    print(
        f"pool: routing {pooled / per_key:.2f}x per key | {args.streams} streams: "
        f"{pc} connections / {pt} threads / {pm:.1f} MiB pooled vs {sc} / {st} / {sm:.1f} MiB"
    )


if __name__ == "__main__":
    main()
