"""Fixtures for the inbox and case-file tests: a SQLite file per test holding the schema, the Liaoning
demo users and the two small processes of ``tests/engine/processes``, driven by the real engine.

The fixture names are distinct from those of ``tests/conftest.py`` so that both sets can coexist.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from engine import AppEngine, Settings, build_engine
from engine.access import Actor, load_actor
from engine.clock import FixedClock
from engine.db import read_session, write_session
from engine.demo import seed_demo
from engine.migrate import upgrade_database
from engine.models import RoleAssignment, User
from engine.runtime import InstanceView, TaskView

HERE = Path(__file__).parent
CASEWORK_START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 in Shenyang


def casework_settings(url: str, processes_dir: Path = HERE / "processes") -> Settings:
    return Settings(database_url=url, processes_dir=processes_dir, forms_dir=HERE / "forms")


class Desk:
    """Acts as demo users on the test processes; each ``as_user`` block is one committed transaction."""

    def __init__(self, app: AppEngine) -> None:
        self.app = app

    @property
    def clock(self) -> FixedClock:
        assert isinstance(self.app.clock, FixedClock)
        return self.app.clock

    def advance(self, **delta: float) -> None:
        self.clock.advance(timedelta(**delta))

    @contextmanager
    def as_user(self, username: str) -> Iterator[tuple[Session, Actor]]:
        with write_session(self.app.sessions) as session:
            yield session, load_actor(session, username)

    def start(
        self, county: str, username: str = "shenyang_sa", process: str = "casework", **data: Any
    ) -> InstanceView:
        with self.as_user(username) as (session, actor):
            return self.app.start_instance(session, actor, process, {"county_code": county, **data})

    def task(self, instance_id: uuid.UUID, step: str) -> TaskView:
        with read_session(self.app.sessions) as session:
            view = self.app.get_instance(session, load_actor(session, "auditor"), instance_id)
        matches = [t for t in view.open_tasks if t.step == step]
        assert matches, f"no open {step!r}; open: {[t.step for t in view.open_tasks]}"
        return matches[0]

    def complete(
        self, username: str, instance_id: uuid.UUID, step: str, data: dict[str, Any]
    ) -> InstanceView:
        task_id = self.task(instance_id, step).id
        with self.as_user(username) as (session, actor):
            return self.app.complete_task(session, actor, task_id, data)

    def to_ack(self, county: str, party: str, **data: Any) -> uuid.UUID:
        """Start a casework case and take it to the city's acknowledgement step; return its id."""
        case = self.start(county, **data).id
        self.complete("shenyang_sa", case, "fill", {"title": "材料"})
        self.complete(party, case, "review", {"decision": "同意"})
        return case

    def deploy_from(self, processes_dir: Path) -> None:
        """Deploy the processes of another folder into this test's database (a new version if changed)."""
        other = build_engine(casework_settings(str(self.app.db.url), processes_dir), self.clock)
        try:
            with write_session(other.sessions) as session:
                other.deploy(session)
        finally:
            other.db.dispose()

    def add_user(self, username: str, role: str, org_code: str, active: bool = True) -> None:
        with write_session(self.app.sessions) as session:
            user = User(
                username=username,
                display_name=username,
                password_hash="x",
                active=active,
                created_at=self.app.now(),
            )
            user.roles.append(RoleAssignment(role=role, org_code=org_code))
            session.add(user)


@pytest.fixture(scope="session")
def casework_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file with the schema, demo data and the test processes deployed; copied per test."""
    path = tmp_path_factory.mktemp("casework") / "template.db"
    app = build_engine(casework_settings(f"sqlite:///{path}"), FixedClock(CASEWORK_START))
    try:
        upgrade_database(app.db)
        with write_session(app.sessions) as session:
            seed_demo(session, CASEWORK_START)
            app.deploy(session)
    finally:
        app.db.dispose()
    return path


@pytest.fixture
def casework_url(tmp_path: Path, casework_template: Path) -> str:
    """A fresh copy of the prepared database, for one test."""
    path = tmp_path / "casework.db"
    shutil.copyfile(casework_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def desk(casework_url: str) -> Iterator[Desk]:
    """The real engine on a fresh database with the test processes, its clock fixed at CASEWORK_START."""
    app = build_engine(casework_settings(casework_url), FixedClock(CASEWORK_START))
    yield Desk(app)
    app.db.dispose()
