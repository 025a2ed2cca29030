"""Fixtures for the document tests (helpers are in ``helpers.py``)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine import AppEngine, Settings, build_engine
from engine.clock import FixedClock
from tests.documents.helpers import START, drive_to_approval
from tests.support.scenario import Scenario


@pytest.fixture(scope="module")
def approved_case(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AppEngine, Any]]:
    """One approved case on its own SQLite copy, shared by the read-only rendering tests of a module."""
    path = tmp_path_factory.mktemp("documents") / "demozone.db"
    shutil.copyfile(sqlite_template, path)
    engine = build_engine(Settings(database_url=f"sqlite:///{path}"), FixedClock(START))
    case = Scenario(engine)
    view = drive_to_approval(case)
    yield engine, view
    engine.db.dispose()
