"""Fixtures for the designer tools: engines on fresh SQLite files for simulation.

``fresh_engine`` copies the database that ``tests/conftest.py`` prepares (all of processes/ deployed,
as in production: zone_creation starts other processes). ``faults_engine`` holds ``sim_faults`` from
``tests/designer/processes``, which fails on purpose. Fixture names differ from those of
``tests/conftest.py`` so both sets coexist.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from engine import AppEngine, Settings, build_engine
from engine.clock import FixedClock
from engine.db import write_session
from engine.demo import seed_demo
from engine.migrate import upgrade_database

HERE = Path(__file__).parent
START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 in Shenyang, as in tests/conftest.py
FIXTURE_PROCESSES = HERE / "processes"
FIXTURE_FORMS = HERE / "forms"


def _prepare(settings: Settings) -> None:
    engine = build_engine(settings, FixedClock(START))
    try:
        upgrade_database(engine.db)
        with write_session(engine.sessions) as session:
            seed_demo(session, START)
            engine.deploy(session)
    finally:
        engine.db.dispose()


@pytest.fixture
def fresh_engine(tmp_path: Path, sqlite_template: Path) -> Iterator[Callable[[], AppEngine]]:
    """Makes engines on separate copies of the prepared database (processes/ deployed), each with its own clock."""
    made: list[AppEngine] = []

    def make() -> AppEngine:
        path = tmp_path / f"simulation-{len(made)}.db"
        shutil.copyfile(sqlite_template, path)
        made.append(build_engine(Settings(database_url=f"sqlite:///{path}"), FixedClock(START)))
        return made[-1]

    yield make
    for engine in made:
        engine.db.dispose()


@pytest.fixture(scope="session")
def faults_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A prepared SQLite file with the fixture processes deployed instead of processes/."""
    path = tmp_path_factory.mktemp("faults") / "faults.db"
    _prepare(_fixture_settings(f"sqlite:///{path}"))
    return path


def _fixture_settings(url: str) -> Settings:
    return Settings(database_url=url, processes_dir=FIXTURE_PROCESSES, forms_dir=FIXTURE_FORMS)


@pytest.fixture
def faults_engine(tmp_path: Path, faults_template: Path) -> Iterator[AppEngine]:
    """The engine on a copy of the database holding ``sim_faults`` (a script that fails, a message never sent)."""
    path = tmp_path / "faults.db"
    shutil.copyfile(faults_template, path)
    engine = build_engine(_fixture_settings(f"sqlite:///{path}"), FixedClock(START))
    yield engine
    engine.db.dispose()
