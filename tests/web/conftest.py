"""Fixtures for the web tests: the real app over the real engine and a SQLite file.

A session-wide template database holds the demo data, the real ``zone_creation`` process, the small
``web_notice`` process of ``tests/web/processes`` (an 已阅 step for bulk acknowledgement) and two cases:

- case A, 新民市 (沈阳市): recommended and co-signed, now at 县委's ``research_report``, with one comment
  and one attachment;
- case B, 瓦房店市 (大连市): just started, at 大连市科协's ``recommend``.

Every process of the real ``processes/`` is deployed (zone_creation starts zone_term on approval).

Each test gets a copy (``world``); tests that only read or are refused share one copy per module
(``shared``). Every client request goes through the full app: CSRF, sign-in, permissions, engine.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from engine import AppEngine, Settings, build_engine
from engine.access import Actor, load_actor
from engine.casefile import add_attachment, add_comment
from engine.clock import FixedClock
from engine.db import write_session
from engine.demo import seed_demo
from engine.migrate import upgrade_database
from engine.sample_data import sample_form_data
from engine.settings import PROJECT_ROOT
from tests.conftest import START
from web import create_app
from web.form_render import widget_kind
from web.security import issue_token

HERE = Path(__file__).parent
FORMS = PROJECT_ROOT / "forms"
TODAY = date(2026, 3, 2)
PDF = b"%PDF-1.4\n% demozone test\n"
TOKEN_USERS = (
    "shenyang_sa",
    "shenyang_talent",
    "xinmin_party",
    "faku_party",
    "dalian_sa",
    "province_office",
    "auditor",
    "s001",
)
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def fill(form: str, **overrides: Any) -> dict[str, Any]:
    """Valid data for ``forms/<form>.json`` (decisions and other fields overridable)."""
    schema = json.loads((FORMS / f"{form}.json").read_text(encoding="utf-8"))
    return sample_form_data(schema, TODAY, **overrides)


def act(engine: AppEngine, username: str, command: Callable[[Session, Actor], Any]) -> Any:
    """Run one engine command as ``username`` in its own committed transaction."""
    with write_session(engine.sessions) as session:
        return command(session, load_actor(session, username))


def open_task(engine: AppEngine, instance_id: uuid.UUID, step: str) -> uuid.UUID:
    view = act(engine, "auditor", lambda s, a: engine.get_instance(s, a, instance_id))
    return next(t.id for t in view.open_tasks if t.step == step)


@dataclass
class World:
    """What the template database holds: ids of the cases, tasks and attachment, and API tokens."""

    url: str = ""
    case_a: uuid.UUID = uuid.UUID(int=0)
    case_b: uuid.UUID = uuid.UUID(int=0)
    research_task: uuid.UUID = uuid.UUID(int=0)
    recommend_b: uuid.UUID = uuid.UUID(int=0)
    attachment: uuid.UUID = uuid.UUID(int=0)
    tokens: dict[str, str] = field(default_factory=dict)
    app: Flask | None = None

    def engine(self) -> AppEngine:
        assert self.app is not None
        return self.app.extensions["demozone.engine"]


def engine_for(url: str, processes: Path = PROJECT_ROOT / "processes", forms: Path = FORMS) -> AppEngine:
    return build_engine(Settings(database_url=url, processes_dir=processes, forms_dir=forms), FixedClock(START))


@pytest.fixture(scope="session")
def web_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, World]:
    """The prepared database described above, built once per test session."""
    path = tmp_path_factory.mktemp("web") / "web.db"
    url = f"sqlite:///{path}"
    engine = engine_for(url)
    upgrade_database(engine.db)
    with write_session(engine.sessions) as session:
        seed_demo(session, START)
        engine.deploy(session)
    notice = engine_for(url, HERE / "processes", HERE / "forms")
    with write_session(notice.sessions) as session:
        notice.deploy(session)
    notice.db.dispose()

    world = World(url=url)
    try:
        world.case_a = act(
            engine, "shenyang_sa", lambda s, a: engine.start_instance(s, a, "zone_creation", {"county_code": "210181"})
        ).id
        recommend = open_task(engine, world.case_a, "recommend")
        act(engine, "shenyang_sa", lambda s, a: engine.complete_task(s, a, recommend, fill("recommend")))
        cosign = open_task(engine, world.case_a, "talent_cosign")
        act(
            engine,
            "shenyang_talent",
            lambda s, a: engine.complete_task(s, a, cosign, fill("talent_cosign", talent_decision="同意")),
        )
        world.research_task = open_task(engine, world.case_a, "research_report")
        act(engine, "shenyang_sa", lambda s, a: add_comment(engine, s, a, world.case_a, "请县委抓紧调研。"))
        world.attachment = act(
            engine,
            "xinmin_party",
            lambda s, a: add_attachment(engine, s, a, world.case_a, "调研提纲.pdf", PDF, world.research_task),
        ).id
        world.case_b = act(
            engine, "dalian_sa", lambda s, a: engine.start_instance(s, a, "zone_creation", {"county_code": "210281"})
        ).id
        world.recommend_b = open_task(engine, world.case_b, "recommend")
        with write_session(engine.sessions) as session:
            world.tokens = {name: issue_token(session, name, START) for name in TOKEN_USERS}
    finally:
        engine.db.dispose()
    return path, world


def _world(template: tuple[Path, World], folder: Path, **config: Any) -> World:
    source, prepared = template
    path = folder / "web.db"
    shutil.copyfile(source, path)
    url = f"sqlite:///{path}"
    app = create_app({"TESTING": True, "SECRET_KEY": "test-secret", "ENGINE": engine_for(url), **config})
    return World(**{**prepared.__dict__, "url": url, "app": app})


@pytest.fixture
def world(web_template: tuple[Path, World], tmp_path: Path) -> Iterator[World]:
    """A fresh copy of the template database and an app over it, for a test that changes things."""
    built = _world(web_template, tmp_path)
    yield built
    built.engine().db.dispose()


@pytest.fixture(scope="module")
def shared(web_template: tuple[Path, World], tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One copy per module, for tests that only read or whose requests are all refused."""
    built = _world(web_template, tmp_path_factory.mktemp("shared"))
    yield built
    built.engine().db.dispose()


class Browser:
    """A test client that signs in and adds the CSRF token to its form posts, as a browser would."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self._token: str | None = None

    def csrf(self) -> str:
        if self._token is None:
            page = self.client.get("/login").get_data(as_text=True)
            match = _CSRF.search(page) or _CSRF.search(self.client.get("/inbox").get_data(as_text=True))
            assert match, "no CSRF token on the page"
            self._token = match.group(1)
        return self._token

    def login(self, username: str, password: str = "demo123", **kwargs: Any) -> TestResponse:
        response = self.client.post(
            "/login", data={"username": username, "password": password, "csrf_token": self.csrf()}, **kwargs
        )
        self._token = None  # signing in starts a new session
        return response

    def get(self, url: str, **kwargs: Any) -> TestResponse:
        return self.client.get(url, **kwargs)

    def post(self, url: str, data: Any = None, csrf: bool = True, **kwargs: Any) -> TestResponse:
        data = dict(data or {}) if not isinstance(data, list) else data
        if csrf:
            if isinstance(data, list):
                data = [*data, ("csrf_token", self.csrf())]
            else:
                data.setdefault("csrf_token", self.csrf())
        if isinstance(data, list):
            from werkzeug.datastructures import MultiDict

            data = MultiDict(data)
        return self.client.post(url, data=data, **kwargs)


@pytest.fixture
def browser(world: World) -> Browser:
    """An anonymous browser on ``world``'s app."""
    assert world.app is not None
    return Browser(world.app.test_client())


def signed_in(app: Flask, username: str) -> Browser:
    """A browser signed in as ``username``."""
    user = Browser(app.test_client())
    response = user.login(username)
    assert response.status_code == 302, (username, response.status_code)
    return user


def form_schema(form: str) -> dict[str, Any]:
    return json.loads((FORMS / f"{form}.json").read_text(encoding="utf-8"))


def form_data(schema: dict[str, Any], data: dict[str, Any]) -> list[tuple[str, str]]:
    """Form fields as the task page names them, for ``data`` (the inverse of ``parse_form``)."""
    pairs: list[tuple[str, str]] = []
    for key, value in data.items():
        name = "f." + key
        kind = widget_kind(schema["properties"][key])
        if kind == "table":
            for index, row in enumerate(value):
                pairs += [(f"{name}.{index}.{column}", _text(cell)) for column, cell in row.items()]
        elif kind == "list":
            pairs += [(f"{name}.{index}", _text(item)) for index, item in enumerate(value)]
        elif kind == "checkboxes":
            pairs += [(name, _text(item)) for item in value]
        else:
            pairs.append((name, _text(value)))
    return pairs


def _text(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)
