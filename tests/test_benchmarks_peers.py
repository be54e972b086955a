"""benchmarks/peers.py runs end to end on a short burst: measured clients get a row with figures,
a peer that is not installed is reported as skipped (the run still exits 0), and --json / --png
write the raw figures and the chart.

A peer is made "not installed" deterministically by a stub package on PYTHONPATH whose import
fails, as a missing one does: the benchmark's children see exactly that.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "peers.py"
MESSAGES = 2_000


def test_quick_run_reports_measured_and_skipped_clients(tmp_path: Path) -> None:
    hidden = tmp_path / "hidden"
    (hidden / "picows").mkdir(parents=True)
    (hidden / "picows" / "__init__.py").write_text(
        "raise ImportError(\"No module named 'picows' (hidden by the test)\")\n"
    )
    raw, chart = tmp_path / "raw.json", tmp_path / "chart.png"
    env = {**os.environ, "PYTHONPATH": str(hidden)}
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--messages", str(MESSAGES),
         "--only", "rxbinance,floor,picows", "--json", str(raw), "--png", str(chart)],
        capture_output=True, text=True, timeout=50, env=env, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout

    figures = json.loads(raw.read_text())
    assert figures["messages"] == MESSAGES
    clients = figures["clients"]
    assert set(clients) == {"rxbinance-speed", "rxbinance", "floor", "picows"}
    # The two that need nothing optional are measured: one run each, every message counted
    # (the span runs from the first message to the last).
    for key in ("rxbinance", "floor"):
        (run,) = clients[key]["runs"]
        assert run["messages"] == MESSAGES - 1
        assert run["wall"] > 0
        assert run["rate"] == run["messages"] / run["wall"]
        assert clients[key]["skipped"] is None
        row = next(
            line for line in out.splitlines() if line.startswith(clients[key]["label"] + " ")
        )
        assert f"{run['rate']:,.0f}" in row
    # The hidden peer: skipped, with the reason, in the table and in the notes.
    assert clients["picows"]["runs"] == []
    assert "hidden by the test" in clients["picows"]["skipped"]
    row = next(line for line in out.splitlines() if line.startswith("picows on_ws_frame "))
    assert "skipped" in row
    assert "- picows on_ws_frame: skipped: No module named 'picows' (hidden by the test)" in out
    # orjson is optional here: the speed row is measured or skipped, never missing or failed.
    speed = clients["rxbinance-speed"]
    assert (len(speed["runs"]) == 1) != (speed["skipped"] is not None)
    assert speed["errors"] == []
    assert chart.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
