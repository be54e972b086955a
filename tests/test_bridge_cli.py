"""rxbinance publish / rxbinance watch --redis (issue 14, part 3), run as a user runs them: in
subprocesses, against the built-in simulated market and a real redis-server."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.redis_server import RedisServer, free_port, running_redis

ROOT = Path(__file__).resolve().parent.parent
FAST = ("--sim", "--sim-tick", "0.01")


def rxbinance(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rxbinance", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    with running_redis() as redis_server:
        yield redis_server


def test_publish_then_watch_prints_what_was_published(server: RedisServer) -> None:
    server.client().flushall()
    published = rxbinance(
        "publish", "btcusdt@trade", "ethusdt@trade", "--redis", server.url, *FAST, "-n", "30"
    )
    assert published.returncode == 0, published.stderr
    assert "published 30 entries (0 dropped)" in published.stderr
    client = server.client()
    keys = ("rxbinance:btcusdt@trade", "rxbinance:ethusdt@trade")
    assert sum(client.xlen(k) for k in keys) == 30
    stored = {k: [json.loads(fields[b"d"]) for _, fields in client.xrange(k)] for k in keys}
    one = rxbinance("watch", "--redis", server.url, "--start", "0", keys[0], "-n", "3")
    assert one.returncode == 0, one.stderr
    assert [json.loads(line) for line in one.stdout.splitlines()] == stored[keys[0]][:3]
    both = rxbinance("watch", "--redis", server.url, "--start", "0", *keys, "-n", "30")
    assert both.returncode == 0, both.stderr
    lines = [json.loads(line) for line in both.stdout.splitlines()]
    for key in keys:
        stream = key.removeprefix("rxbinance:")
        assert [m["data"] for m in lines if m["stream"] == stream] == stored[key]


def test_the_same_one_line_errors(server: RedisServer) -> None:
    server.client().set("plain", "x")
    dead = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    cases = [
        (("watch", "--redis", dead, "k", "-n", "1"), 1, "Redis unreachable at redis://:***@"),
        (("publish", "btcusdt@trade", "--redis", dead, *FAST), 1, "Redis unreachable"),
        (("watch", "--redis", "http://localhost", "k"), 2, "bad Redis URL"),
        (("publish", "btcusdt@trade", "--redis", "localhost:6379", *FAST), 2, "bad Redis URL"),
        (("watch", "--redis", server.url, "plain", "-n", "1"), 1, "holds a string, not a stream"),
        (("publish", "btcusdt@trade", "--key", "plain", "--redis", server.url, *FAST), 1,
         "holds a string, not a stream"),
        (("publish", "btcusdt@nonsense", "--redis", server.url, *FAST), 2, "nonsense"),
        (("watch", "--redis", server.url, "--sim", "k"), 2, "leave out --sim"),
    ]  # fmt: skip
    for args, status, text in cases:
        done = rxbinance(*args)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == status, (args, done.stderr)
        assert len(lines) == 1, (args, lines)
        assert lines[0].startswith("rxbinance: error: "), (args, lines)
        assert text in lines[0], (args, lines)
        assert "hunter2" not in done.stderr
