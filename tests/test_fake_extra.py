"""Without the ``testing`` extra (websockets), importing FakeBinance says what to install.

Each check runs in a fresh interpreter where ``websockets`` cannot be imported
(``sys.modules["websockets"] = None`` before anything else), as on a machine where
``pip install rxbinance`` left the extra out.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HIDE_WEBSOCKETS = "import sys; sys.modules['websockets'] = None\n"
INSTALL = "pip install 'rxbinance[testing]'"


def run_without_websockets(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", HIDE_WEBSOCKETS + code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


MESSAGE = f"ModuleNotFoundError: rxbinance.testing.FakeBinance needs websockets>=13: {INSTALL}"


def test_importing_fakebinance_names_the_extra_in_one_line() -> None:
    result = run_without_websockets("from rxbinance.testing import FakeBinance\n")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == MESSAGE
    # One error, not a chain of tracebacks into websockets' import machinery.
    assert result.stderr.count("Traceback") == 1
    assert "During handling" not in result.stderr
    assert "direct cause" not in result.stderr


def test_a_websockets_older_than_13_names_the_extra_too() -> None:
    # websockets 12 has no websockets.asyncio: the same install command upgrades it.
    code = (
        "import sys; sys.modules['websockets.asyncio'] = None\n"
        "from rxbinance.testing import FakeBinance\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == MESSAGE


def test_the_error_is_an_import_error_a_caller_can_catch() -> None:
    code = (
        "try:\n"
        "    from rxbinance.testing import FakeBinance\n"
        "except ImportError as exc:\n"
        "    print(type(exc).__name__, exc.name, exc)\n"
    )
    result = run_without_websockets(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == MESSAGE.replace(":", " websockets", 1)


def test_attribute_access_says_the_same() -> None:
    result = run_without_websockets("import rxbinance.testing\nrxbinance.testing.FakeBinance\n")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].endswith(INSTALL)


def test_the_rest_of_the_kit_imports_without_the_extra() -> None:
    code = (
        "from rxbinance.testing import ConnectionRecord, Market\n"
        "import rxbinance\n"
        "market = Market(symbols=('BTCUSDT',), seed=1)\n"
        "market.step(['btcusdt@trade'])\n"
        "print(type(market).__name__, ConnectionRecord.__name__, rxbinance.BinanceStreams)\n"
    )
    result = run_without_websockets(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Market ConnectionRecord <class 'rxbinance.streams.")


def test_with_the_extra_fakebinance_imports() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "from rxbinance.testing import FakeBinance; print(FakeBinance)"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "rxbinance.testing._server.FakeBinance" in result.stdout
