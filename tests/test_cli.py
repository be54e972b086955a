"""The command line, run as a user runs it: in a subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def rxbinance(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rxbinance", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_demo_prints_trades_from_the_embedded_simulator() -> None:
    result = rxbinance("demo", "--count", "4", "--symbol", "ethusdt")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "simulated market at ws://127.0.0.1:" in lines[0]
    trades = lines[1:]
    assert len(trades) == 4
    assert all(line.startswith("ETHUSDT") for line in trades)
    ids = [int(line.split("#")[1].split()[0]) for line in trades]
    assert ids == sorted(ids)
    assert len(set(ids)) == 4


def test_a_bad_symbol_is_one_clear_line_and_a_non_zero_status() -> None:
    result = rxbinance("demo", "--symbol", "BTC USDT")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "rxbinance: invalid symbol 'BTC USDT': a symbol is 1 to 32 letters or digits, "
        "such as 'BTCUSDT'"
    ]
    assert result.stdout == ""
