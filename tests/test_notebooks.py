"""The notebooks in notebooks/ run top to bottom, offline, and pass the checks in their cells.

Each notebook asserts what it shows (the book is not crossed, the candles are consecutive, the
signal is finite...), so a notebook that runs but shows nothing fails here. They are executed
with nbclient in a kernel of this very interpreter (a kernel spec written for the test, so a
venv's ``python`` is used whatever ``python`` means on PATH), importing this checkout's
rxbinance. They run in a copy of notebooks/, from the copy's folder as Jupyter would run them
from theirs, so what they write (04 saves its chart next to itself) lands in the copy: running
the suite leaves every tracked file as it was, which a test checks. The four run concurrently,
to keep the file fast; each cell has a timeout. The tests never contact Binance: the committed
notebooks must say ``LIVE = False``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
kernelspec = pytest.importorskip("jupyter_client.kernelspec")
manager = pytest.importorskip("jupyter_client.manager")

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
EXPECTED = ["01_quickstart", "02_order_book", "03_klines", "04_signals"]
CELL_TIMEOUT = 90  # seconds per cell; the notebooks' own waits are bounded below this
PNG = b"\x89PNG\r\n\x1a\n"
KERNEL = "rxbinance-notebook-test"


def load(path: Path) -> Any:
    return nbformat.read(path, as_version=4)


def code_cells(notebook: Any) -> list[Any]:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def test_the_notebooks_are_there() -> None:
    assert [path.stem for path in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_offline_and_without_outputs(path: Path) -> None:
    notebook = load(path)
    nbformat.validate(notebook)
    cells = code_cells(notebook)
    # One switch, at the top, off: the suite must never reach the real exchange.
    assert re.match(r"LIVE = False\b", cells[0].source), cells[0].source
    sources = "\n".join(cell.source for cell in cells)
    assert len(re.findall(r"^LIVE = ", sources, re.MULTILINE)) == 1
    assert "connect(live=LIVE)" in sources
    for cell in cells:
        assert cell.outputs == [], f"{path.name}: committed with outputs"
        assert cell.execution_count is None
    # Cells wait with bounded awaits, never by blocking the kernel's event loop.
    assert "time.sleep" not in sources
    assert ".run()" not in sources
    assert "asyncio.run(" not in sources


@pytest.fixture(scope="module")
def kernel_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A kernel spec running this interpreter with this checkout first on sys.path."""
    directory = tmp_path_factory.mktemp("kernels")
    spec = directory / KERNEL
    spec.mkdir()
    pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "rxbinance test kernel",
                "language": "python",
                "env": {"PYTHONPATH": pythonpath},
            }
        )
    )
    return directory


class Run:
    """One executed notebook: the notebook with its outputs, its working directory, and the
    exception execution raised (None when every cell passed)."""

    def __init__(self, notebook: Any, cwd: Path, error: BaseException | None) -> None:
        self.notebook = notebook
        self.cwd = cwd
        self.error = error


def tracked_state() -> dict[str, str]:
    """Every file of notebooks/ and at the top of the checkout, with a hash of its bytes."""
    files = [p for p in (ROOT / "notebooks").rglob("*") if ".ipynb_checkpoints" not in p.parts]
    files += ROOT.iterdir()
    return {
        str(p.relative_to(ROOT)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(files)
        if p.is_file()
    }


@pytest.fixture(scope="module")
def before_runs() -> dict[str, str]:
    return tracked_state()


@pytest.fixture(scope="module")
def copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of notebooks/ without the committed chart, so a chart found there after the runs
    is one that 04 made."""
    directory = tmp_path_factory.mktemp("copy") / "notebooks"
    shutil.copytree(ROOT / "notebooks", directory, ignore=shutil.ignore_patterns("*.png"))
    return directory


@pytest.fixture(scope="module")
def stale_chart() -> Path:
    """Where 04_signals saves its chart by default (the temporary directory), removed first
    so that a chart found there after the runs is one that 04 made."""
    chart = Path(tempfile.gettempdir()) / "rxbinance-04_signals.png"
    chart.unlink(missing_ok=True)
    return chart


@pytest.fixture(scope="module")
def runs(
    kernel_dir: Path, copy: Path, before_runs: dict[str, str], stale_chart: Path
) -> dict[str, Run]:
    async def run(path: Path) -> Run:
        notebook = load(path)
        km = manager.AsyncKernelManager(
            kernel_name=KERNEL,
            kernel_spec_manager=kernelspec.KernelSpecManager(kernel_dirs=[str(kernel_dir)]),
        )
        client = nbclient.NotebookClient(
            notebook,
            km=km,
            timeout=CELL_TIMEOUT,
            resources={"metadata": {"path": str(path.parent)}},  # the kernel's cwd
        )
        try:
            await client.async_execute(cleanup_kc=True)  # our km: nbclient would keep it
        except Exception as exc:  # reported by the test of this notebook
            return Run(notebook, path.parent, exc)
        return Run(notebook, path.parent, None)

    async def run_all() -> list[Run]:
        return list(await asyncio.gather(*(run(copy / path.name) for path in NOTEBOOKS)))

    return {
        path.stem: result for path, result in zip(NOTEBOOKS, asyncio.run(run_all()), strict=True)
    }


@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_runs_offline_and_its_checks_pass(runs: dict[str, Run], name: str) -> None:
    result = runs[name]
    if result.error is not None:
        pytest.fail(f"{name} failed:\n{result.error}")
    cells = code_cells(result.notebook)
    assert all(cell.execution_count is not None for cell in cells)
    # The notebook checks what it shows: several cells assert on the data.
    assert sum("assert " in cell.source for cell in cells) >= 2
    outputs = [output for cell in cells for output in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    # rxbinance logs a subscriber that raised, a dropped socket...: none of that here.
    stderr = "".join(o.text for o in outputs if o.output_type == "stream" and o.name == "stderr")
    assert "rxbinance" not in stderr, stderr
    assert "Traceback" not in stderr, stderr


def test_quickstart_shows_a_model_as_an_html_table(runs: dict[str, Run]) -> None:
    html = rich_outputs(runs["01_quickstart"], "text/html")
    assert any("<caption" in page and "Trade" in page and "price" in page for page in html)


def test_order_book_notebook_shows_the_live_ladder(runs: dict[str, Run]) -> None:
    html = rich_outputs(runs["02_order_book"], "text/html")
    assert any("update id" in page and "spread" in page for page in html)


def test_klines_notebook_draws_a_chart(runs: dict[str, Run]) -> None:
    assert rich_outputs(runs["03_klines"], "image/png")


def test_signals_notebook_saves_its_chart_outside_the_repository(
    runs: dict[str, Run], copy: Path, stale_chart: Path
) -> None:
    result = runs["04_signals"]
    assert result.cwd == copy
    assert stale_chart.read_bytes().startswith(PNG)  # written by this run (removed before it)
    assert not (copy / "04_signals.png").exists()  # nothing next to the notebook
    assert rich_outputs(result, "image/png")


def test_running_the_notebooks_leaves_the_checkout_as_it_was(
    runs: dict[str, Run], before_runs: dict[str, str]
) -> None:
    # Not one file of notebooks/ (04_signals.png above all) nor at the top of the checkout was
    # rewritten, added or removed: the notebooks ran, and wrote, in the copy.
    assert all(result.error is None for result in runs.values())
    assert "notebooks/04_signals.png" in before_runs
    assert tracked_state() == before_runs


def test_the_committed_chart_is_a_png() -> None:
    # The README shows it; it is made by running 04_signals in notebooks/.
    assert (ROOT / "notebooks" / "04_signals.png").read_bytes().startswith(PNG)


def rich_outputs(result: Run, mime: str) -> list[str]:
    return [
        output.data[mime]
        for cell in code_cells(result.notebook)
        for output in cell.outputs
        if output.output_type in ("display_data", "execute_result", "update_display_data")
        and mime in output.get("data", {})
    ]
