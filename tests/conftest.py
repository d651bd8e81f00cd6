"""Suite-wide settings."""

from __future__ import annotations

import os
import sys

import pytest


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """End the process once pytest has printed its summary.

    DuckDB's nanobind bindings print pages of "leaked instance" warnings while the interpreter
    tears down, burying the summary line CI reads; nothing useful happens after this point.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    status = getattr(config, "_antidistill_exitstatus", None)
    if status is not None:
        os._exit(int(status))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config._antidistill_exitstatus = exitstatus  # type: ignore[attr-defined]
