"""No test skips in CI: under ``CI`` (CI runs with ``CI=true``), tests/conftest.py reports every
skip, from a marker, a call or an import at collection, as a failure; outside CI a skip stays a
skip. Checked by running pytest with that conftest on scratch tests that skip."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

SKIPPING = """
import pytest

@pytest.mark.skipif(True, reason="a marker skip")
def test_marker() -> None:
    pass

def test_call() -> None:
    pytest.skip("a call skip")

@pytest.mark.xfail(reason="an expected failure", strict=True)
def test_xfail() -> None:
    assert False

def test_passes() -> None:
    pass
"""

SKIPPING_AT_IMPORT = """
import pytest

pytest.importorskip("rxbinance_no_such_module")

def test_never_collected() -> None:
    pass
"""


def run_pytest(directory: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    if ci is not None:
        env["CI"] = ci
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), str(TESTS.parent)])
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "conftest", "-p", "no:cacheprovider", "-rA"],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("ci", [None, "", "false", "0"])
def test_outside_ci_a_skip_is_a_skip(tmp_path: Path, ci: str | None) -> None:
    (tmp_path / "test_skipping.py").write_text(SKIPPING)
    (tmp_path / "test_skipping_at_import.py").write_text(SKIPPING_AT_IMPORT)
    result = run_pytest(tmp_path, ci)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed, 3 skipped, 1 xfailed" in result.stdout, result.stdout


@pytest.mark.parametrize("ci", ["true", "1", "True"])
def test_in_ci_a_skip_is_a_failure_that_gives_its_reason(tmp_path: Path, ci: str) -> None:
    (tmp_path / "test_skipping.py").write_text(SKIPPING)
    result = run_pytest(tmp_path, ci)
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, result.stdout + result.stderr
    # The marker skips at setup (an error), the call skips in the test (a failure); the
    # xfail is still an xfail.
    assert "1 failed, 1 passed, 1 xfailed, 1 error" in result.stdout, result.stdout
    assert "test_marker - skipped in CI (a marker skip)" in result.stdout, result.stdout
    assert "test_call - skipped in CI (a call skip)" in result.stdout, result.stdout


def test_in_ci_a_module_skipped_at_import_fails_the_run(tmp_path: Path) -> None:
    (tmp_path / "test_skipping_at_import.py").write_text(SKIPPING_AT_IMPORT)
    result = run_pytest(tmp_path, "true")
    assert result.returncode == pytest.ExitCode.INTERRUPTED, result.stdout + result.stderr
    assert "skipped in CI (could not import 'rxbinance_no_such_module'" in result.stdout
