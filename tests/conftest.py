"""Shared fixtures: a prepared database (SQLite, and PostgreSQL where available), the engine with a
fixed clock, and the scenario driver.

Databases are prepared once per session (schema, Liaoning demo data, deployed processes) and copied
for each test, so every test starts from the same state and may commit freely.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from engine import AppEngine, Settings, build_engine
from engine.clock import FixedClock
from engine.db import write_session
from engine.demo import seed_demo
from engine.migrate import upgrade_database
from tests.support.pgcluster import PgCluster, postgres_available, require_postgres
from tests.support.scenario import Scenario

START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 in Shenyang
PG_TEMPLATE = "demozone_template"


def prepare_database(url: str) -> None:
    """Schema, demo data and deployed processes, as `make run` would leave them."""
    engine = build_engine(Settings(database_url=url), FixedClock(START))
    try:
        upgrade_database(engine.db)
        with write_session(engine.sessions) as session:
            seed_demo(session, START)
            engine.deploy(session)
    finally:
        engine.db.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A prepared SQLite file, copied by each test that uses it."""
    path = tmp_path_factory.mktemp("template") / "demozone.db"
    prepare_database(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """A throwaway PostgreSQL cluster on 127.0.0.1 (skipped where impossible, unless required)."""
    reason = postgres_available()
    if reason:
        if require_postgres():
            pytest.fail(f"PostgreSQL is required but unavailable: {reason}")
        pytest.skip(f"PostgreSQL unavailable: {reason}")
    with PgCluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def pg_template(pg_cluster: PgCluster) -> str:
    """A prepared PostgreSQL database used as the template of each test's database."""
    prepare_database(pg_cluster.create_database(PG_TEMPLATE))
    return PG_TEMPLATE


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh prepared database for one test: a SQLite file, or a PostgreSQL database."""
    if request.param == "sqlite":
        path = tmp_path / "demozone.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    template = request.getfixturevalue("pg_template")
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(cluster.url_for("postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
        yield cluster.url_for(name)
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    """A fresh prepared SQLite database, for tests that need not run on PostgreSQL too."""
    path = tmp_path / "demozone.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def clock() -> FixedClock:
    """The engine's clock, standing at 2026-03-02 09:00 Shenyang time until a test moves it."""
    return FixedClock(START)


@pytest.fixture
def engine(database_url: str, clock: FixedClock) -> Iterator[AppEngine]:
    """The real engine on a fresh prepared database (runs once per database backend)."""
    app_engine = build_engine(Settings(database_url=database_url), clock)
    yield app_engine
    app_engine.db.dispose()


@pytest.fixture
def scenario(engine: AppEngine) -> Scenario:
    """A driver for one case: start it, complete steps as users, move the clock."""
    return Scenario(engine)
