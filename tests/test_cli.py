"""The command line, run as a user runs it: in a subprocess, against the built-in simulated
market (--sim) or a FakeBinance of the test's own passed with --ws-url. Never the real exchange:
every test passes --sim, a 127.0.0.1 URL, or runs a command that opens no socket."""

from __future__ import annotations

import gzip
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import pytest

from rxbinance.recording import Recorder, open_recording
from rxbinance.testing import FakeBinance

ROOT = Path(__file__).resolve().parent.parent
FAST = ("--sim", "--sim-tick", "0.01")  # the simulated market at 10x real time
TIMEOUT = 60

# The child must see Ctrl-C as a person's terminal delivers it. A shell starts background jobs
# with SIGINT ignored, and exec keeps that, so a test run from such a job would hand its child
# an ignored SIGINT: reset it to the default before exec'ing `python -m rxbinance`.
_WITH_DEFAULT_SIGINT = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.executable, [sys.executable, '-m', 'rxbinance', *sys.argv[1:]])"
)


def rxbinance(*args: str, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rxbinance", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def rxbinance_all(*commands: tuple[str, ...]) -> list[subprocess.CompletedProcess[str]]:
    """Run independent commands at the same time (the machine has more than one core)."""
    processes = [
        (
            command,
            subprocess.Popen(
                [sys.executable, "-m", "rxbinance", *command],
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ),
        )
        for command in commands
    ]
    results = []
    for command, process in processes:
        try:
            out, err = process.communicate(timeout=TIMEOUT)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
        results.append(subprocess.CompletedProcess(command, process.returncode, out, err))
    return results


class Child:
    """A running `rxbinance` whose output the test reads line by line as it comes."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", _WITH_DEFAULT_SIGINT, *args],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.err_lines: list[str] = []

    @property
    def stdout(self) -> IO[str]:
        assert self.process.stdout is not None
        return self.process.stdout

    def stderr_until(self, pattern: str) -> re.Match[str]:
        """Read stderr lines (blocking) until one matches ``pattern``."""
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.err_lines.append(line)
            found = re.search(pattern, line)
            if found:
                return found
        raise AssertionError(f"stderr ended without {pattern!r}: {''.join(self.err_lines)}")

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def finish(self) -> tuple[int, str, str]:
        """Wait for the exit; return (status, rest of stdout, all of stderr)."""
        out, err = self.process.communicate(timeout=TIMEOUT)
        return self.process.returncode, out, "".join(self.err_lines) + err

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.communicate(timeout=TIMEOUT)


@pytest.fixture
def children() -> Iterator[list[Child]]:
    """Children started by a test, killed if the test failed before they finished."""
    started: list[Child] = []
    yield started
    for child in started:
        child.kill()


def start(children: list[Child], *args: str) -> Child:
    child = Child(*args)
    children.append(child)
    return child


def closed_port() -> int:
    """A 127.0.0.1 port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one line a failure prints, checked to be the only one, with no traceback."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("rxbinance: error: "), result.stderr
    return lines[0].removeprefix("rxbinance: error: ")


# -- demo ----------------------------------------------------------------------------------


def test_demo_prints_trades_from_the_embedded_simulator() -> None:
    result = rxbinance("demo", "--count", "4", "--symbol", "ethusdt")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "4 trades of ETHUSDT, simulated market at ws://127.0.0.1:" in lines[0]
    trades = [line for line in lines if "  ethusdt@trade  " in line]
    assert len(trades) == 4
    assert all(" ETHUSDT " in line for line in trades)
    ids = [int(line.split("#")[1]) for line in trades]
    assert ids == sorted(ids)
    assert len(set(ids)) == 4
    assert any(line.strip().startswith("next: rxbinance watch") for line in lines)


def test_a_bad_symbol_is_one_clear_line_and_a_non_zero_status() -> None:
    result = rxbinance("demo", "--symbol", "BTC USDT")
    assert result.returncode == 2
    assert one_error_line(result) == (
        "invalid symbol 'BTC USDT': a symbol is 1 to 32 letters or digits, such as 'BTCUSDT'"
    )
    assert result.stdout == ""


def test_help_version_and_a_bare_command() -> None:
    bare, version, usage = rxbinance_all((), ("--version",), ("watch",))
    assert bare.returncode == 0
    assert "watch" in bare.stdout
    assert "book" in bare.stdout
    assert "exit status:" in bare.stdout
    assert version.returncode == 0
    assert version.stdout.startswith("rxbinance ")
    # argparse: usage line and the error, status 2
    assert usage.returncode == 2
    assert "STREAM" in usage.stderr


# -- watch ---------------------------------------------------------------------------------


def test_watch_one_stream_prints_json_lines_until_the_limit() -> None:
    result = rxbinance("watch", "btcusdt@trade", *FAST, "--limit", "5")
    assert result.returncode == 0, result.stderr
    trades = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(trades) == 5
    assert {t["e"] for t in trades} == {"trade"}
    assert {t["s"] for t in trades} == {"BTCUSDT"}
    ids = [t["t"] for t in trades]
    assert ids == sorted(set(ids))
    assert "simulated market at ws://127.0.0.1:" in result.stderr
    assert "connected to ws://127.0.0.1:" in result.stderr
    assert "Traceback" not in result.stderr


def test_watch_several_streams_uses_one_multiplex_socket_and_names_each_message() -> None:
    names = ["btcusdt@trade", "ethusdt@trade", "bnbbtc@bookTicker"]
    result = rxbinance("watch", *names, *FAST, "--limit", "300", "--quiet")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    messages = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(messages) == 300
    assert all(set(m) == {"stream", "data"} for m in messages)
    assert {m["stream"] for m in messages} == set(names)
    for m in messages:
        assert m["data"]["s"] == m["stream"].split("@")[0].upper()


def test_watch_pretty_is_a_table() -> None:
    result = rxbinance(
        "watch", "btcusdt@trade", "btcusdt@bookTicker", *FAST, "--pretty", "--limit", "40", "-q"
    )
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["time", "(UTC)", "stream", "event", "details"]
    assert len(rows) == 40
    trades = [r for r in rows if "btcusdt@trade" in r]
    books = [r for r in rows if "btcusdt@bookTicker" in r]
    assert trades
    assert books
    assert all(re.match(r"\d\d:\d\d:\d\d\.\d{3} ", r) for r in trades)
    assert all(re.search(r" (buy|sell) +[\d.]+ @ [\d.]+ +#\d+$", r) for r in trades)
    assert all(
        re.search(
            r"bid [\d.]+ @ [\d.]+ +ask [\d.]+ @ [\d.]+ +spread [\d.]+ \([\d.]+ bp\) +u \d+$", r
        )
        for r in books
    )


def test_ctrl_c_stops_watch_cleanly(children: list[Child]) -> None:
    child = start(children, "watch", "btcusdt@trade", *FAST)
    first = json.loads(child.stdout.readline())
    assert first["e"] == "trade"
    child.signal(signal.SIGINT)
    status, out, err = child.finish()
    assert status == 130
    assert "Traceback" not in err
    assert all(json.loads(line)["e"] == "trade" for line in out.splitlines() if line)


def test_a_closed_pipe_ends_watch_quietly(children: list[Child]) -> None:
    child = start(children, "watch", "btcusdt@trade", *FAST, "-q")
    child.stdout.readline()
    child.stdout.close()  # like `| head -1` exiting
    assert child.process.stderr is not None
    err = child.process.stderr.read()
    assert child.process.wait(timeout=TIMEOUT) == 141
    assert err == ""


def test_status_shows_the_rate_and_reconnects_with_attempt_and_delay(
    children: list[Child],
) -> None:
    with FakeBinance(tick_interval=0.01) as fake:
        child = start(
            children,
            "watch",
            "btcusdt@trade",
            "--ws-url",
            fake.ws_url,
            "--retry-delay",
            "0.05",
            "--stats-interval",
            "0.2",
        )
        child.stderr_until(r"connected to ws://127\.0\.0\.1:\d+/ws/btcusdt@trade")
        child.stderr_until(r"\d+ messages, \d+\.\d/s")
        fake.drop_connections()
        child.stderr_until(r"disconnected from btcusdt@trade: .*")
        reconnect = child.stderr_until(
            r"reconnecting btcusdt@trade in (\d+\.\d) s \(attempt 1 of 5\)"
        )
        assert float(reconnect.group(1)) < 1.0
        child.stderr_until(r"connected to ws://")  # healed
        # The rate line carries the stream's health from streams.statistics().
        child.stderr_until(
            r"\d+ messages, \d+\.\d/s \| lag p99 -?\d+ ms, 1 reconnect, gaps \d+ repaired \d+ lost"
        )
        child.signal(signal.SIGINT)
        status, _, err = child.finish()
    assert status == 130
    assert "Traceback" not in err


# -- errors --------------------------------------------------------------------------------


def test_a_bad_stream_name_fails_before_anything_starts() -> None:
    result = rxbinance("watch", "BTCUSDT@trade", "--sim")
    assert result.returncode == 2
    line = one_error_line(result)
    assert line.startswith("invalid stream name 'BTCUSDT@trade'")
    assert "lowercase: 'btcusdt'" in line
    assert result.stdout == ""


def test_an_unknown_symbol_is_named() -> None:
    result, book, bad = rxbinance_all(
        ("watch", "btcusdt@trade", "foousdt@trade", *FAST, "-q"),
        ("book", "NOPE", *FAST, "-q"),
        ("book", "BTC-USDT", "--sim"),
    )
    assert result.returncode == 2
    assert one_error_line(result) == "unknown symbol 'FOOUSDT' on market 'spot' (Invalid symbol.)"
    assert book.returncode == 2
    assert one_error_line(book) == "unknown symbol 'NOPE' on market 'spot' (Invalid symbol.)"
    assert bad.returncode == 2
    assert one_error_line(bad).startswith("invalid symbol 'BTC-USDT'")


def test_an_unreachable_exchange_is_one_line_after_the_retries() -> None:
    url = f"ws://127.0.0.1:{closed_port()}"
    args = ("watch", "btcusdt@trade", "--ws-url", url, "--retries", "1", "--retry-delay", "0.05")
    quiet, loud = rxbinance_all((*args, "-q"), args)
    assert quiet.returncode == 1
    line = one_error_line(quiet)
    assert line.startswith(f"cannot connect to {url}/ws/btcusdt@trade: ")
    assert "gave up after 2 attempts" in line
    assert quiet.stdout == ""

    assert loud.returncode == 1
    assert "Traceback" not in loud.stderr
    assert "reconnecting btcusdt@trade in " in loud.stderr
    assert "(attempt 1 of 1)" in loud.stderr
    assert loud.stderr.splitlines()[-1] == f"rxbinance: error: {line}"


def test_option_conflicts_are_usage_errors() -> None:
    both, no_rest = rxbinance_all(
        ("watch", "btcusdt@trade", "--sim", "--ws-url", "ws://127.0.0.1:1"),
        ("book", "BTCUSDT", "--ws-url", "ws://127.0.0.1:1"),
    )
    assert both.returncode == 2
    assert "--sim runs the built-in market" in one_error_line(both)
    assert no_rest.returncode == 2
    assert "pass --rest-url too" in one_error_line(no_rest)


def test_file_errors(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    nowhere = tmp_path / "no-such-dir" / "r.jsonl"
    missing, not_recording, exists, unwritable = rxbinance_all(
        ("replay", str(tmp_path / "nope.jsonl")),
        ("replay", str(text)),
        ("record", "btcusdt@trade", "--sim", "-o", str(text)),
        ("record", "btcusdt@trade", *FAST, "-q", "-o", str(nowhere)),
    )
    assert missing.returncode == 1
    assert one_error_line(missing) == f"{tmp_path / 'nope.jsonl'}: no such file"

    assert not_recording.returncode == 1
    assert "not an rxbinance recording" in one_error_line(not_recording)

    assert exists.returncode == 1
    assert one_error_line(exists) == f"{text} exists: pass --force to overwrite it"
    assert text.read_text() == "hello\n"

    assert unwritable.returncode == 1
    assert one_error_line(unwritable) == f"cannot write {nowhere}: No such file or directory"


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = rxbinance("replay", str(tmp_path / "nope.jsonl"), "--debug")
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("rxbinance: error: ")


# -- record and replay ---------------------------------------------------------------------


def test_record_then_replay_a_gzip_file(tmp_path: Path) -> None:
    path = tmp_path / "trades.jsonl.gz"
    recorded = rxbinance(
        "record", "btcusdt@trade", "ethusdt@trade", *FAST, "-o", str(path), "-n", "50"
    )
    assert recorded.returncode == 0, recorded.stderr
    assert f"recorded 50 messages to {path}" in recorded.stderr
    assert path.read_bytes()[:2] == b"\x1f\x8b"
    gzip.decompress(path.read_bytes())  # complete: the trailer was written
    with open_recording(path) as recording:
        assert recording.header.streams == ("btcusdt@trade", "ethusdt@trade")
        assert recording.header.combined
        records = list(recording)
        assert recording.torn is None
    assert len(records) == 50
    times = [r.time for r in records]
    assert times == sorted(times)

    replayed, pretty = rxbinance_all(
        ("replay", str(path), "--speed", "0"),
        ("replay", str(path), "--speed", "0", "--pretty", "--limit", "3"),
    )
    assert replayed.returncode == 0, replayed.stderr
    messages = [json.loads(line) for line in replayed.stdout.splitlines()]
    assert messages == [{"stream": r.stream, "data": r.data} for r in records]

    assert pretty.returncode == 0
    header, *rows = pretty.stdout.splitlines()
    assert header.startswith("time (UTC)")
    assert len(rows) == 3
    assert all("trade" in row for row in rows)


@pytest.mark.parametrize("name", ["r.jsonl", "r.jsonl.gz"])
def test_a_recorder_killed_with_sigkill_leaves_a_replayable_file(
    tmp_path: Path, children: list[Child], name: str
) -> None:
    path = tmp_path / name
    child = start(
        children, "record", "btcusdt@trade", *FAST, "-o", str(path), "--stats-interval", "0.05"
    )
    while int(child.stderr_until(r"(\d+) messages recorded").group(1)) < 30:
        pass
    child.signal(signal.SIGKILL)
    status, _, _ = child.finish()
    assert status == -signal.SIGKILL

    result = rxbinance("replay", str(path), "--speed", "0")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    trades = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(trades) >= 30
    ids = [t["t"] for t in trades]
    assert ids == list(range(ids[0], ids[0] + len(ids)))  # nothing lost before the tail
    if name.endswith(".gz"):  # no gzip trailer after a kill: always reported
        assert "rxbinance: warning: " in result.stderr
        assert "was the recorder killed?" in result.stderr


def test_ctrl_c_and_sigterm_finish_the_recording(tmp_path: Path, children: list[Child]) -> None:
    for signum, expected in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
        path = tmp_path / f"{signum}.jsonl.gz"
        child = start(
            children, "record", "btcusdt@trade", *FAST, "-o", str(path), "--stats-interval", "0.05"
        )
        child.stderr_until(r"[1-9]\d* messages recorded")
        child.signal(signum)
        status, _, err = child.finish()
        assert status == expected
        assert "Traceback" not in err
        count = int(re.findall(r"recorded (\d+) messages to", err)[-1])
        gzip.decompress(path.read_bytes())  # the trailer was written
        with open_recording(path) as recording:
            assert len(list(recording)) == count
            assert recording.torn is None


def test_replay_speed_keeps_or_drops_the_original_gaps(tmp_path: Path) -> None:
    path = tmp_path / "slow.jsonl"
    with Recorder(path, ["btcusdt@trade"]) as recorder:
        for i in range(3):
            recorder.write("btcusdt@trade", {"e": "trade", "t": i}, received=100.0 + 0.5 * i)
    child = Child("replay", str(path), "--speed", "2")  # gaps of 0.25 s
    try:
        assert json.loads(child.stdout.readline())["t"] == 0
        started = time.monotonic()
        assert json.loads(child.stdout.readline())["t"] == 1
        assert json.loads(child.stdout.readline())["t"] == 2
        elapsed = time.monotonic() - started
        status, rest, _ = child.finish()
    finally:
        child.kill()
    assert status == 0
    assert rest == ""
    assert elapsed >= 0.2  # the recorded gaps / 2, never less (more on a busy machine)

    fast = rxbinance("replay", str(path), "--speed", "0")
    assert [json.loads(x)["t"] for x in fast.stdout.splitlines()] == [0, 1, 2]


def test_replay_reports_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "torn.jsonl"
    with Recorder(path, ["btcusdt@trade"]) as recorder:
        recorder.write("btcusdt@trade", {"t": 1}, received=1.0)
    with path.open("ab") as f:
        f.write(b'{"t":2.0,"stream":"btcusdt@tr')
    result = rxbinance("replay", str(path), "--speed", "0")
    assert result.returncode == 0
    assert result.stdout == '{"t":1}\n'
    assert result.stderr.startswith("rxbinance: warning: ")
    assert "its last line is incomplete" in result.stderr


# -- book ----------------------------------------------------------------------------------


def parse_blocks(text: str) -> list[dict[str, Any]]:
    blocks = []
    for block in text.strip().split("\n\n"):
        title, header, *levels = block.splitlines()
        asks = [_level(line) for line in levels if line.startswith("ask")]
        bids = [_level(line) for line in levels if line.startswith("bid")]
        (spread,) = [line for line in levels if "spread" in line]
        update = re.match(r"(\w+)  update id (\d+)", title)
        assert update, title
        assert header.split() == ["price", "quantity"]
        blocks.append(
            {
                "symbol": update.group(1),
                "update_id": int(update.group(2)),
                "asks": asks,
                "bids": bids,
                "spread": Decimal(re.search(r"spread ([\d,.]+)", spread).group(1).replace(",", "")),  # type: ignore[union-attr]
            }
        )
    return blocks


def _level(line: str) -> tuple[Decimal, Decimal]:
    _, price, qty = line.split()
    return Decimal(price.replace(",", "")), Decimal(qty.replace(",", ""))


def test_book_prints_one_ladder_block_per_update_when_piped() -> None:
    result = rxbinance("book", "ethusdt", *FAST, "--depth", "5", "--limit", "3")
    assert result.returncode == 0, result.stderr
    blocks = parse_blocks(result.stdout)
    assert len(blocks) == 3
    ids = [b["update_id"] for b in blocks]
    assert ids == sorted(set(ids))
    for block in blocks:
        assert block["symbol"] == "ETHUSDT"
        asks, bids = block["asks"], block["bids"]
        assert len(asks) == len(bids) == 5
        assert [p for p, _ in asks] == sorted((p for p, _ in asks), reverse=True)  # best last
        assert [p for p, _ in bids] == sorted((p for p, _ in bids), reverse=True)  # best first
        assert bids[0][0] < asks[-1][0]
        assert block["spread"] == asks[-1][0] - bids[0][0]
        assert all(q > 0 for _, q in asks + bids)
    assert "order book ETHUSDT in sync at update id" in result.stderr


def test_ctrl_c_stops_book_cleanly(children: list[Child]) -> None:
    child = start(children, "book", "BTCUSDT", *FAST, "--depth", "3")
    assert child.stdout.readline().startswith("BTCUSDT  update id ")
    child.signal(signal.SIGINT)
    status, _, err = child.finish()
    assert status == 130
    assert "Traceback" not in err


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_book_redraws_in_place_on_a_terminal() -> None:
    status, text, err = run_on_terminal(
        "book", "BTCUSDT", *FAST, "-d", "4", "-n", "8", rows=50, columns=120
    )
    assert status == 0, err
    assert text.startswith("\x1b[?25l")  # cursor hidden while drawing...
    assert text.endswith("\x1b[?25h")  # ...and shown again at the end
    redraws = re.findall(r"\x1b\[(\d+)F", text)  # cursor up over the previous block
    assert redraws
    assert "BTCUSDT  update id " in text
    # Status goes into the screen, not to stderr, while the ladder is drawn.
    assert "order book BTCUSDT in sync" in text
    assert b"in sync" not in err
    last = text.rsplit("\x1b[2KBTCUSDT  update id ", 1)[1]
    assert len(re.findall(r"\x1b\[2Kask ", last)) == 4
    assert len(re.findall(r"\x1b\[2Kbid ", last)) == 4


def test_book_against_a_fakebinance_given_by_url(children: list[Child]) -> None:
    with FakeBinance(tick_interval=0.01) as fake:
        result = rxbinance(
            "book",
            "BNBBTC",
            "--ws-url",
            fake.ws_url,
            "--rest-url",
            fake.rest_url,
            "--limit",
            "2",
            "-q",
        )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert [b["symbol"] for b in parse_blocks(result.stdout)] == ["BNBBTC", "BNBBTC"]


# -- more options, and the table formats ----------------------------------------------------


def test_duration_and_the_usdm_market() -> None:
    timed, usdm, wrong = rxbinance_all(
        ("watch", "btcusdt@trade", *FAST, "--duration", "0.5", "-q"),
        ("watch", "btcusdt@aggTrade", "btcusdt@bookTicker", "--market", "usdm", *FAST, "-n", "60"),
        ("watch", "btcusdt@trade", "--market", "usdm", "--sim"),
    )
    assert timed.returncode == 0, timed.stderr
    assert timed.stdout.count("\n") >= 1
    assert usdm.returncode == 0, usdm.stderr
    assert len(usdm.stdout.splitlines()) == 60
    # Each route's socket reports "connected" before its first message, so once both streams
    # printed, both routes were announced (the two sockets connect in either order).
    assert '"stream":"btcusdt@aggTrade"' in usdm.stdout
    assert '"stream":"btcusdt@bookTicker"' in usdm.stdout
    assert "/market/stream?streams=btcusdt@aggTrade" in usdm.stderr  # USD-M routes
    assert "/public/stream?streams=btcusdt@bookTicker" in usdm.stderr
    assert wrong.returncode == 2
    assert one_error_line(wrong) == (
        "stream 'btcusdt@trade' is a spot stream: not available on market 'usdm'"
    )


def test_table_rows_of_every_kind() -> None:
    from rxbinance.cli._format import number, table_rows

    assert number("0.01000000") == "0.01"
    assert number("100.00000000") == "100"
    assert number("0.00000000") == "0"
    assert number("1500") == "1500"

    def row(stream: str, payload: Any) -> str:
        (line,) = table_rows(stream, payload)
        return " ".join(line.split())

    e = 1_700_000_000_123  # 22:13:20.123 UTC
    trade = {"e": "trade", "E": e, "s": "BNBBTC", "t": 7, "p": "0.00100", "q": "100", "m": True}
    assert row("bnbbtc@trade", trade) == (
        "22:13:20.123 bnbbtc@trade trade BNBBTC sell 100 @ 0.001 #7"
    )
    agg = {"e": "aggTrade", "E": e, "s": "BNBBTC", "a": 9, "p": "1.0", "q": "2.50", "m": False}
    assert row("bnbbtc@aggTrade", agg).endswith("aggTrade BNBBTC buy 2.5 @ 1 #9")
    kline = {
        "e": "kline",
        "E": e,
        "s": "BNBBTC",
        "k": {"i": "1m", "o": "1.0", "h": "2.0", "l": "0.5", "c": "1.5", "v": "10", "x": True},
    }
    assert row("bnbbtc@kline_1m", kline).endswith("kline_1m BNBBTC o 1 h 2 l 0.5 c 1.5 v 10 closed")
    book = {"u": 400, "s": "BNBUSDT", "b": "25.35", "B": "31.21", "a": "25.36", "A": "40.66"}
    assert row("bnbusdt@bookTicker", book) == (
        "bnbusdt@bookTicker bookTicker BNBUSDT bid 31.21 @ 25.35 ask 40.66 @ 25.36 "
        "spread 0.01 (3.94 bp) u 400"
    )
    diff = {"e": "depthUpdate", "E": e, "s": "BNBBTC", "U": 157, "u": 160, "b": [["1", "2"]]}
    assert row("bnbbtc@depth", diff).endswith("depthUpdate BNBBTC ids 157..160 1 bid, 0 asks")
    partial = {"lastUpdateId": 160, "bids": [["0.0024", "10"]], "asks": []}
    assert row("bnbbtc@depth5", partial).endswith("depth id 160 best bid 0.0024 x 10 best ask -")
    mini = {"e": "24hrMiniTicker", "E": e, "s": "A", "c": "2", "o": "1", "h": "3", "l": "1"}
    both = table_rows("!miniTicker@arr", [mini, {**mini, "s": "B"}])
    assert [" ".join(r.split()).split()[3] for r in both] == ["A", "B"]
    ticker = {"e": "1hTicker", "E": e, "s": "A", "c": "2", "p": "0.5", "P": "33.3"}
    assert "1hTicker A last 2 change 0.5 (33.3%)" in row("a@ticker_1h", ticker)
    avg = {"e": "avgPrice", "E": e, "s": "A", "i": "5m", "w": "25776.86000000"}
    assert row("a@avgPrice", avg).endswith("avgPrice A 5m average 25776.86")
    other = {"e": "referencePrice", "s": "A", "r": None, "t": 5}
    assert row("a@referencePrice", other).endswith("referencePrice s A r null t 5")


# -- issue 9 and 10: Ctrl-C before the backlog, clear errors at the edges, --pretty ---------


def test_the_first_ctrl_c_acts_before_the_backlog_is_printed(children: list[Child]) -> None:
    """A fast stream into a pipe nobody reads: the child's queue holds a long backlog when
    Ctrl-C comes. It must stop after what is already in the pipe and its buffers, not print
    the backlog first."""
    import fcntl

    count, padding = 2000, "x" * 1000
    with FakeBinance(tick_interval=None) as fake:  # no market: only what the test publishes
        child = start(children, "watch", "btcusdt@trade", "--ws-url", fake.ws_url, "-q")
        (connection,) = fake.wait_for_connections(1, "btcusdt@trade", timeout=TIMEOUT)
        for i in range(count):  # about 2 MB: far more than a pipe holds
            fake.publish("btcusdt@trade", {"e": "trade", "s": "BTCUSDT", "t": i, "pad": padding})

        def all_sent(fake: FakeBinance) -> bool:
            (record,) = [c for c in fake.connections if c.id == connection.id]
            return record.frames_sent >= count

        fake.wait_for(all_sent, timeout=TIMEOUT)
        pipe_size = fcntl.fcntl(child.stdout.fileno(), fcntl.F_GETPIPE_SZ)  # type: ignore[attr-defined]
        child.signal(signal.SIGINT)
        status, out, err = child.finish()
    assert status == 130, err
    assert "Traceback" not in err
    ids = [json.loads(line)["t"] for line in out.splitlines()]  # whole lines only
    assert ids == list(range(len(ids)))
    # What the pipe held, plus the write blocked in it and the flush of stdout's buffer: about
    # a twentieth of the backlog.
    assert len(out) <= pipe_size + 4 * 8192, f"{len(ids)} of {count} messages printed"


def test_demo_with_a_symbol_the_simulator_lacks_is_one_line_and_status_2() -> None:
    result = rxbinance("demo", "--symbol", "XRPUSDT")
    assert result.returncode == 2
    assert one_error_line(result) == (
        "the simulated market has no symbol 'XRPUSDT': it has BTCUSDT, ETHUSDT, BNBBTC"
    )
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (
            ("btcusdt@kline_2m",),
            [
                "invalid stream name 'btcusdt@kline_2m'",
                "'2m'",
                "'1s', '1m', '3m', '5m', '15m', '30m', '1h', '2h', '4h', '6h', '8h', '12h', "
                "'1d', '3d', '1w', '1M'",
                "(market 'spot')",
            ],
        ),
        (
            ("btcusdt@trade", "btcusdt@depth15"),
            ["invalid stream name 'btcusdt@depth15'", "'15'", "allowed are 5, 10, 20"],
        ),
        (
            ("btcusdt@depth@1000ms", "--market", "usdm"),
            ["'@1000ms'", "(100 ms)", "(250 ms)", "(500 ms)", "(market 'usdm')"],
        ),
        (
            ("btcusdt@kline_1s", "--market", "usdm-testnet"),
            ["'1s'", "continuousKline_1s", "(market 'usdm-testnet')"],
        ),
    ],
)
def test_stream_name_errors_are_as_precise_as_the_library(
    args: tuple[str, ...], fragments: list[str]
) -> None:
    result = rxbinance("watch", *args, "--sim")
    assert result.returncode == 2
    line = one_error_line(result)  # the only line: nothing started (no simulator status)
    for fragment in fragments:
        assert fragment in line
    assert result.stdout == ""


def test_book_gives_up_on_an_unreachable_rest_endpoint() -> None:
    rest = f"http://127.0.0.1:{closed_port()}"
    with FakeBinance(tick_interval=0.01) as fake:
        base = ("book", "BTCUSDT", "--ws-url", fake.ws_url, "--rest-url", rest)
        quiet, loud, checked = rxbinance_all(
            (*base, "--no-check", "--retries", "2", "-q"),
            (*base, "--no-check", "--retries", "2"),
            (*base, "-q"),
        )
    assert quiet.returncode == 1
    line = one_error_line(quiet)
    assert line == (
        f"order book BTCUSDT: no depth snapshot from {rest} after 3 attempts (last: Connection "
        "refused; is the REST endpoint reachable from here? --sim runs the built-in market)"
    )
    assert quiet.stdout == ""

    assert loud.returncode == 1
    failures = [x for x in loud.stderr.splitlines() if "snapshot" in x and "failed" in x]
    assert [re.sub(r"retry in [\d.]+ s", "retry in T s", x) for x in failures] == [
        "rxbinance: order book BTCUSDT: snapshot 1 of 3 failed (Connection refused); retry in T s",
        "rxbinance: order book BTCUSDT: snapshot 2 of 3 failed (Connection refused); retry in T s",
    ]  # each failure once (no log warning besides it), one short line
    assert "warning" not in loud.stderr
    assert loud.stderr.splitlines()[-1] == f"rxbinance: error: {line}"

    # Without --no-check the symbol check meets the unreachable endpoint first.
    assert checked.returncode == 1
    assert one_error_line(checked).startswith(f"cannot reach {rest}: Connection refused (")


def run_on_terminal(*args: str, rows: int, columns: int) -> tuple[int, str, bytes]:
    """Run `rxbinance` with stdout on a pseudo-terminal of ``rows`` x ``columns``; return
    (status, what the terminal received, stderr)."""
    import fcntl
    import struct
    import termios

    master, slave = os.openpty()
    try:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        process = subprocess.Popen(
            [sys.executable, "-m", "rxbinance", *args],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=slave,
            stderr=subprocess.PIPE,
        )
        os.close(slave)
        slave = -1
        output = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
        _, err = process.communicate(timeout=TIMEOUT)
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    return process.returncode, output.decode(), err


def test_the_ladder_fits_a_small_terminal() -> None:
    status, text, err = run_on_terminal(
        "book", "BTCUSDT", *FAST, "-d", "10", "-n", "8", rows=12, columns=44
    )
    assert status == 0, err
    ups = [int(n) for n in re.findall(r"\x1b\[(\d+)F", text)]
    assert ups  # it redrew in place...
    assert max(ups) <= 11  # ...over blocks that fit the window, one row left for the cursor
    blocks = text.split("\x1b[2KBTCUSDT  update id ")[1:]
    assert blocks
    for block in blocks:
        drawn = block.split("\x1b[J")[0]
        assert len(re.findall(r"\x1b\[2Kask ", drawn)) == 3  # (12 - 1 - 2 - 3) // 2 a side
        assert len(re.findall(r"\x1b\[2Kbid ", drawn)) == 3
    lines = re.sub(r"\x1b\[[\d;?]*[A-Za-z]", "\n", text).splitlines()
    assert max(len(line) for line in lines) <= 43  # clipped: a wrapped line breaks the redraw
    assert any(line.endswith("…") for line in lines)  # the status line was too long


def test_pretty_prices_have_the_symbols_precision_and_spreads_are_in_basis_points() -> None:
    result = rxbinance(
        "watch", "btcusdt@bookTicker", "bnbbtc@trade", *FAST, "--pretty", "-n", "200", "-q"
    )
    assert result.returncode == 0, result.stderr
    _, *rows = result.stdout.splitlines()
    books = [r for r in rows if "btcusdt@bookTicker" in r]
    trades = [r for r in rows if "bnbbtc@trade" in r]
    assert books
    assert trades
    for row in books:
        assert re.match(r"\d\d:\d\d:\d\d\.\d{3} ", row)  # bookTicker has no E: receive time
        found = re.search(
            r"bid (\d+\.\d+) @ (\d+\.\d+) +ask (\d+\.\d+) @ (\d+\.\d+) +"
            r"spread (\d+\.\d+) \((\d+\.\d+) bp\) +u \d+$",
            row,
        )
        assert found, row
        bid_qty, bid, ask_qty, ask, spread, bps = found.groups()
        assert [len(x.split(".")[1]) for x in (bid, ask, spread)] == [2, 2, 2]  # tick 0.01
        assert [len(x.split(".")[1]) for x in (bid_qty, ask_qty)] == [5, 5]  # step 0.00001
        assert Decimal(spread) == Decimal(ask) - Decimal(bid)
        exact = Decimal(spread) / ((Decimal(ask) + Decimal(bid)) / 2) * 10_000
        assert Decimal(bps) > 0
        assert abs(Decimal(bps) - exact) <= Decimal(10) ** Decimal(bps).as_tuple().exponent
    for row in trades:
        found = re.search(r" (buy|sell) +(\d+\.\d+) @ (\d+\.\d+) +#\d+$", row)
        assert found, row
        assert len(found.group(2).split(".")[1]) == 3  # BNBBTC step 0.001
        assert len(found.group(3).split(".")[1]) == 6  # BNBBTC tick 0.000001


@pytest.mark.parametrize(
    ("spread", "mid", "expected"),
    [
        ("0.01", "60000.005", "0.0017 bp"),  # one tick of BTCUSDT: never "0.00 bp"
        ("0.000001", "0.0085005", "1.18 bp"),
        ("0.5", "100", "50.00 bp"),
        ("0.02", "200", "1.00 bp"),
        ("0.000001", "99999", "0.00000010 bp"),
        ("0", "100", "0 bp"),
        ("1", "0", "-"),
    ],
)
def test_basis_points(spread: str, mid: str, expected: str) -> None:
    from rxbinance.cli._format import basis_points

    assert basis_points(Decimal(spread), Decimal(mid)) == expected


def test_precision_from_exchange_info_and_fixed_decimals() -> None:
    from rxbinance.cli._format import Precision, fixed, precisions, short_error, table_rows

    info = {
        "symbols": [
            {
                "symbol": "BTCUSDT",
                "filters": [
                    {"filterType": "PRICE_FILTER", "tickSize": "0.01000000"},
                    {"filterType": "LOT_SIZE", "stepSize": "0.00001000"},
                ],
            },
            {  # USD-M spells them the same way
                "symbol": "ETHUSDT",
                "filters": [
                    {"filterType": "PRICE_FILTER", "tickSize": "0.10"},
                    {"filterType": "LOT_SIZE", "stepSize": "1"},
                ],
            },
            {"symbol": "NOFILTERS", "filters": []},
        ]
    }
    found = precisions(info)
    assert found == {"BTCUSDT": Precision(2, 5), "ETHUSDT": Precision(1, 0)}
    assert fixed("60000.10000000", 2) == "60000.10"
    assert fixed("60000.00000000", 2) == "60000.00"
    assert fixed("60000.125", 2) == "60000.125"  # a digit is never hidden
    assert fixed("0.10000000", None) == "0.1"
    assert fixed("nan?", 2) == "nan?"

    book = {"u": 400, "s": "BTCUSDT", "b": "60000.10", "B": "1.5", "a": "60000.20", "A": "0.2"}
    (row,) = table_rows("btcusdt@bookTicker", book, received=1_700_000_000.5, precision=found)
    assert " ".join(row.split()) == (
        "22:13:20.500 btcusdt@bookTicker bookTicker BTCUSDT bid 1.50000 @ 60000.10 "
        "ask 0.20000 @ 60000.20 spread 0.10 (0.017 bp) u 400"
    )
    trade = {"e": "trade", "E": 1_700_000_000_123, "s": "BTCUSDT", "t": 7, "p": "60000.1"}
    (row,) = table_rows("btcusdt@trade", {**trade, "q": "2"}, received=5.0, precision=found)
    assert row.startswith("22:13:20.123 ")  # the event time wins over the receive time
    assert "2.00000 @ 60000.10" in row

    long = (
        "RequestError: GET http://127.0.0.1:1/api/v3/depth: ConnectionError: HTTPConnectionPool("
        "host='127.0.0.1', port=1): Max retries exceeded (Caused by NewConnectionError(\"...: "
        'Failed to establish a new connection: [Errno 111] Connection refused"))'
    )
    assert short_error(long) == "Connection refused"
    assert short_error("snapshot too old") == "snapshot too old"
    assert len(short_error("x" * 500)) == 100


def test_book_depth_is_checked_against_the_markets_snapshot_limits() -> None:
    usdm, spot = rxbinance_all(
        ("book", "BTCUSDT", "--market", "usdm", "--sim", "-d", "2000"),
        ("book", "BTCUSDT", "--sim", "-d", "5001"),
    )
    assert usdm.returncode == 2
    assert one_error_line(usdm) == "invalid --depth 2000: 1 to 1000 levels on USD-M futures"
    assert spot.returncode == 2
    assert one_error_line(spot) == "invalid --depth 5001: 1 to 5000 levels on spot"


def test_watch_reports_a_gap_on_stderr_and_goes_on(children: list[Child]) -> None:
    # No --rest-url next to --ws-url: a hole cannot be refilled; it is reported, not fatal.
    with FakeBinance(tick_interval=None) as fake:  # paused: little output, nothing to block
        child = start(
            children, "watch", "btcusdt@trade", "--ws-url", fake.ws_url, "--retry-delay", "0.05"
        )
        child.stderr_until(r"connected to ws://")
        fake.wait_for_connections(1, stream="btcusdt@trade")
        fake.step(5)
        child.stdout.readline()
        first = max(c.id for c in fake.connections)
        fake.refuse_connections()
        fake.drop_connections()
        fake.step(20)  # trades while nobody listens
        fake.accept_connections()
        fake.wait_for(lambda f: any(c.id > first and c.closed_at is None for c in f.connections))
        fake.step(5)
        lost = child.stderr_until(r"btcusdt@trade: (\d+) to (\d+) lost: REST refused")
        assert int(lost.group(1)) <= int(lost.group(2))
        child.signal(signal.SIGINT)
        status, _, err = child.finish()
    assert status == 130
    assert "Traceback" not in err
    assert "error:" not in err
