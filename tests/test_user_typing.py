"""A user's own ``mypy --strict`` sees rxbinance's types after the README's editable install.

setuptools' default editable install of a flat layout puts an import hook (a "finder") in
site-packages; the interpreter runs it, mypy does not, so mypy finds no rxbinance and every type
from it is ``Any``. setup.cfg asks for a strict editable install instead (``[editable_wheel]
mode = strict``): a tree of links to the package's files, named by a plain path in a ``.pth``
file, which mypy reads.

The test checks a user's file the way a user would: in a folder outside the repository (so the
only way to rxbinance is the installed distribution, not the working directory), with its own
strict config, with the mypy of this interpreter's environment.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

USER_FILE = """\
import rxbinance.operators as rbo
from rxbinance import BinanceStreams

reveal_type(BinanceStreams().trades("BTCUSDT").pipe(rbo.parse()))
"""

REVEALED = re.compile(
    r'Revealed type is "reactivex\.observable\.observable\.Observable'
    r'\[rxbinance\.models\.[\w.]*\bTrade\]"'
)


def test_a_users_mypy_sees_observable_of_trade(tmp_path: Path) -> None:
    assert not tmp_path.resolve().is_relative_to(ROOT)
    (tmp_path / "user.py").write_text(USER_FILE)
    (tmp_path / "mypy.ini").write_text("[mypy]\nstrict = True\n")
    # Nothing may point mypy at the checkout but the installed distribution.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MYPYPATH")}
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", "--config-file", "mypy.ini", "user.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    hint = (
        "\nmypy does not see rxbinance through the installed distribution; is it installed with "
        "the README's command (strict editable mode links the files present at install time: "
        "re-run it after adding a module)?"
    )
    assert REVEALED.search(result.stdout) is not None, result.stdout + result.stderr + hint
    assert result.returncode == 0, result.stdout + result.stderr + hint
    assert "Success: no issues found in 1 source file" in result.stdout, result.stdout
