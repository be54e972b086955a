"""rxbinance.bridge (issue 14): consumers in other processes; two consumers of one group
splitting a stream, one of them killed (SIGKILL) with an entry in hand."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from reactivex.subject import Subject

from rxbinance.bridge import consume, publish
from tests.redis_server import RedisServer, running_redis

ROOT = Path(__file__).resolve().parent.parent

# A consumer process: prints READY once subscribed, then one JSON line per message. With
# BLOCK_AT=n it prints BLOCKED and hangs inside on_next on its n-th message (never returns,
# so that entry is never acknowledged): the state a crash leaves behind.
WORKER = """
import json, sys, threading
from rxbinance.bridge import consume

url, key, group, name, block_at = sys.argv[1:6]
block_at = int(block_at)
seen = 0
out = threading.Lock()  # the reader thread and the main thread both print whole lines
def say(*words):
    with out:
        print(*words, flush=True)
def on_next(message):
    global seen
    seen += 1
    if seen == block_at:
        say("BLOCKED", json.dumps(message))
        threading.Event().wait()
    say(json.dumps(message))
kwargs = {"group": group, "consumer": name, "claim_after": 0.5} if group else {"start": "0"}
consume(url, key, **kwargs).subscribe(on_next)
say("READY")
threading.Event().wait()
"""


# One condition for every worker's output: a test may wait on what several of them printed.
OUTPUT = threading.Condition()


class Worker:
    def __init__(self, *args: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen(
            [sys.executable, "-c", WORKER, *args],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        self.lines: list[str] = []
        self._cond = OUTPUT
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()

    def wait_for(self, predicate: Any, timeout: float = 30.0) -> None:
        with self._cond:
            assert self._cond.wait_for(lambda: predicate(self.lines), timeout), self.lines[-5:]

    @property
    def processed(self) -> list[Any]:
        with self._cond:
            return [json.loads(line) for line in self.lines if line.startswith("{")]

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
        self._reader.join(5)
        if self.process.stdout is not None:
            self.process.stdout.close()


@pytest.fixture
def server() -> Iterator[RedisServer]:
    with running_redis() as redis_server:
        yield redis_server


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.kill()


def test_a_consumer_in_another_process_gets_every_message(
    server: RedisServer, workers: list[Worker]
) -> None:
    source: Subject[Any] = Subject()
    with publish(source, server.url, key="k") as publisher:
        for i in range(50):
            source.on_next({"e": "x", "i": i})
        assert publisher.flush(10)
    worker = Worker(server.url, "k", "", "", "0")
    workers.append(worker)
    worker.wait_for(lambda lines: len(lines) >= 51)
    assert "READY" in worker.lines
    assert worker.processed == [{"e": "x", "i": i} for i in range(50)]


def test_two_consumers_of_a_group_split_the_work_and_survive_a_kill(
    server: RedisServer, workers: list[Worker]
) -> None:
    a = Worker(server.url, "work", "g", "a", "0")
    b = Worker(server.url, "work", "g", "b", "4")  # hangs on its 4th message, then is killed
    workers.extend([a, b])
    a.wait_for(lambda lines: "READY" in lines)
    b.wait_for(lambda lines: "READY" in lines)
    source: Subject[Any] = Subject()
    publisher = publish(source, server.url, key="work")
    total = 200
    blocked = False
    for i in range(total):
        source.on_next({"e": "job", "i": i})
        if not blocked:
            # One at a time until b hangs: Redis hands each entry to the consumer that has
            # been waiting longest, so the two take turns.
            done = i + 1

            def caught_up(_: list[str], done: int = done) -> bool:
                return len(a.processed) + len(b.processed) >= done or b_blocked()

            def b_blocked() -> bool:
                return any(line.startswith("BLOCKED") for line in b.lines)

            a.wait_for(caught_up)
            blocked = b_blocked()
    assert publisher.flush(10)
    publisher.dispose()
    b.wait_for(lambda lines: any(line.startswith("BLOCKED") for line in lines))
    b.kill()  # with one entry read and never acknowledged
    # a takes it over after claim_after (0.5 s) and so ends with everything b did not do.
    a.wait_for(lambda _: len(a.processed) + len(b.processed) >= total, timeout=30)
    done_by_a = [m["i"] for m in a.processed]
    done_by_b = [m["i"] for m in b.processed]
    assert len(done_by_b) == 3  # b did 3, then hung on its 4th
    assert len(done_by_a) == len(set(done_by_a))  # nothing twice...
    assert not set(done_by_a) & set(done_by_b)  # ...nor by both
    assert sorted(done_by_a + done_by_b) == list(range(total))  # and nothing lost
    stuck = json.loads(next(line for line in b.lines if line.startswith("BLOCKED"))[8:])
    assert stuck["i"] in done_by_a  # the entry b died holding was claimed by a


def test_subscribers_of_one_group_consumer_ack_after_on_next(server: RedisServer) -> None:
    # In-process: an entry is pending while on_next runs and acknowledged once it returned.
    client = server.client()
    inside = threading.Event()
    release = threading.Event()
    pending_inside: list[int] = []

    def on_next(message: Any) -> None:
        pending_inside.append(client.xpending("q", "g")["pending"])
        inside.set()
        release.wait(10)

    subscription = consume(server.url, "q", group="g", consumer="c").subscribe(on_next)
    client.xadd("q", {b"d": b'{"e":"x"}', b"t": b"1", b"n": b"1", b"s": b""})
    assert inside.wait(10)
    release.set()
    subscription.dispose()
    for thread in threading.enumerate():
        if thread.name == "rxbinance-bridge:q":
            thread.join(5)
    assert pending_inside == [1]
    assert client.xpending("q", "g")["pending"] == 0


def test_a_program_that_falls_off_its_end_exits(server: RedisServer) -> None:
    # Neither the publisher nor the consumer is disposed: their daemon threads must not keep
    # the interpreter alive (the subprocess timeout is only a guard against a hang).
    program = (
        "import sys, reactivex\n"
        "from rxbinance.bridge import consume, publish\n"
        "url = sys.argv[1]\n"
        "consume(url, 'k').subscribe(print)\n"
        "consume(url, 'k', group='g').subscribe(print)\n"
        "publish(reactivex.never(), url, key='k')\n"
        "print('END', flush=True)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program, server.url],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "END\n"
