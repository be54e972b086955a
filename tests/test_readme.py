"""The README's promises: its test command is CI's, and its FakeBinance example runs."""

from __future__ import annotations

import re
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.rst").read_text()


def code_blocks(language: str) -> list[str]:
    pattern = rf"\.\. code-block:: {language}\n\n((?:    .*\n|\n)+)"
    return [
        "\n".join(line[4:] for line in block.splitlines()) for block in re.findall(pattern, README)
    ]


def test_ci_runs_the_readme_test_command() -> None:
    commands = [line.strip() for block in code_blocks("console") for line in block.splitlines()]
    commands = [c for c in commands if c]
    assert len(commands) == 2, commands  # the demo, then the tests
    assert "rxbinance demo" in commands[0]
    assert "pytest" in commands[1]
    assert commands[1] in (ROOT / ".ci" / "run").read_text()


def test_the_fakebinance_example_runs() -> None:
    (example,) = [b for b in code_blocks("python") if "def test_my_strategy" in b]
    assert "fake.streams()" in example  # the one-step way, REST included
    namespace: dict[str, object] = {}
    exec(compile(example, "README.rst", "exec"), namespace)
    tests = [name for name in namespace if name.startswith("test_")]
    assert tests == ["test_my_strategy_sees_trades", "test_my_book_is_the_markets_book"]
    for name in tests:
        namespace[name]()  # type: ignore[operator]


def test_the_typed_pipelines_example_runs() -> None:
    from rxbinance.testing import FakeBinance, Market
    from tests.conftest import Collector

    (example,) = [b for b in code_blocks("python") if "rxbinance.klines_with_history(" in b]
    lines = Collector()
    # A market with a minute of history ending 2 s before a minute boundary: the 1s candles of
    # that minute come from REST and the live stream closes it, so resample("1m") prints within
    # about 0.2 s (at tick_interval=0.01, ten market seconds a second) instead of after a whole
    # new minute.
    minute = int(time.time() * 1000) // 60_000 * 60_000
    market = Market(start_time_ms=minute - 62_000)
    for _ in range(600):  # 100 ms ticks
        market.step(())
    with FakeBinance(tick_interval=0.01, market=market) as fake, fake.streams() as streams:
        namespace: dict[str, object] = {
            "streams": streams,
            "print": lambda *args: lines.on_next(" ".join(map(str, args))),
        }
        exec(compile(example, "README.rst", "exec"), namespace)
        kinds = ("trade", "book", "mid", "quote", "1m")
        lines.wait_for(
            lambda c: all(any(str(x).startswith(k + " ") for x in c.items) for k in kinds),
            timeout=60,
        )


def test_the_scripted_transport_example_runs() -> None:
    (example,) = [b for b in code_blocks("python") if "ScriptedTransport()" in b]
    namespace: dict[str, object] = {}
    exec(compile(example, "README.rst", "exec"), namespace)
    namespace["test_my_handler_survives_a_reconnect"]()  # type: ignore[operator]
