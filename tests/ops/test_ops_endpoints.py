"""``/healthz``, ``/metrics`` and the 503 for an unreachable database, in-process (fast)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from engine.db import write_session
from tests.ops.conftest import CASES_AT_A, CASES_AT_B, OpsDatabase
from tests.ops.opskit import START, free_port, mini_engine
from web import create_app
from web.errors import _database_error


def app_for(url: str, now=START) -> Flask:  # noqa: ANN001
    return create_app({"TESTING": True, "SECRET_KEY": "test", "ENGINE": mini_engine(url, now)})


@pytest.fixture
def sqlite_ops(ops_sqlite_template, tmp_path: Path) -> OpsDatabase:  # noqa: ANN001
    source, populated = ops_sqlite_template
    target = tmp_path / "ops.db"
    target.write_bytes(source.read_bytes())
    return OpsDatabase(f"sqlite:///{target}", "sqlite", populated)


def metric_samples(body: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
    }


def test_healthz_reports_database_migrations_and_timers(sqlite_ops: OpsDatabase) -> None:
    app = app_for(sqlite_ops.url)
    answer = app.test_client().get("/healthz")
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] is True
    migrations = body["checks"]["migrations"]
    assert migrations["ok"] is True and migrations["current"] == migrations["head"] and migrations["head"]
    assert body["checks"]["timers"] == {
        "ok": True,
        "lag_seconds": 0.0,
        "oldest_due_at": None,
        "due_cases": 0,
        "limit_seconds": 300.0,
    }
    app.extensions["demozone.engine"].db.dispose()


def test_healthz_shows_timer_lag_and_is_strict_on_request(sqlite_ops: OpsDatabase) -> None:
    app = app_for(sqlite_ops.url, START + timedelta(days=10, hours=1))  # the b timers fell due an hour ago
    client = app.test_client()
    body = client.get("/healthz").get_json()
    assert body["status"] == "degraded"
    assert body["checks"]["timers"]["ok"] is False
    assert body["checks"]["timers"]["due_cases"] == CASES_AT_B
    assert body["checks"]["timers"]["lag_seconds"] == pytest.approx(3600, abs=1)
    assert client.get("/healthz").status_code == 200
    assert client.get("/healthz?strict=1").status_code == 503
    app.extensions["demozone.engine"].db.dispose()


def test_healthz_is_503_when_the_schema_is_behind(sqlite_ops: OpsDatabase) -> None:
    app = app_for(sqlite_ops.url)
    engine = app.extensions["demozone.engine"]
    with write_session(engine.sessions) as session:
        session.execute(text("UPDATE alembic_version SET version_num = 'older'"))
    answer = app.test_client().get("/healthz")
    assert answer.status_code == 503
    assert answer.get_json()["checks"]["migrations"]["ok"] is False
    assert answer.get_json()["status"] == "unavailable"
    engine.db.dispose()


def test_metrics_count_tasks_conflicts_and_latency(sqlite_ops: OpsDatabase) -> None:
    app = app_for(sqlite_ops.url)
    client = app.test_client()
    token = sqlite_ops.populated.tokens["shenyang_sa"]
    _case, task = sqlite_ops.populated.at_a[0]
    before = metric_samples(client.get("/metrics").get_data(as_text=True))
    headers = {"Authorization": f"Bearer {token}"}
    assert client.post(f"/api/v1/tasks/{task}/complete", json={"data": {"x": 1}}, headers=headers).status_code == 200
    again = client.post(f"/api/v1/tasks/{task}/complete", json={"data": {"x": 1}}, headers=headers)
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "conflict"

    scrape = client.get("/metrics")
    assert scrape.status_code == 200 and scrape.content_type.startswith("text/plain")
    after = metric_samples(scrape.get_data(as_text=True))
    mini = (("process", "mini"),)
    assert after[("demozone_database_up", ())] == 1
    assert after[("demozone_open_tasks", mini)] == CASES_AT_A + CASES_AT_B  # a done, b opened
    assert after[("demozone_tasks_completed_total", mini)] == CASES_AT_B + 2 + 1  # + the approved case
    assert after[("demozone_cases", (("process", "mini"), ("status", "completed")))] == 1
    assert after[("demozone_cases", (("process", "mini"), ("status", "running")))] == CASES_AT_A + CASES_AT_B
    assert after[("demozone_timer_lag_seconds", ())] == 0
    assert after[("demozone_conflicts_total", ())] == before.get(("demozone_conflicts_total", ()), 0) + 1
    latency = ("demozone_command_duration_seconds_count", (("endpoint", "api.complete_task"),))
    assert after[latency] == before.get(latency, 0) + 2
    app.extensions["demozone.engine"].db.dispose()


def test_metrics_can_require_a_token(sqlite_ops: OpsDatabase, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMOZONE_METRICS_TOKEN", "scrape-secret")
    app = app_for(sqlite_ops.url)
    client = app.test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer scrape-secret"}).status_code == 200
    app.extensions["demozone.engine"].db.dispose()


def test_an_unreachable_database_is_a_clear_503_in_chinese_or_english() -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing?connect_timeout=2"  # nobody listens
    app = app_for(url)
    client = app.test_client()
    api = client.get("/api/v1/tasks", headers={"Authorization": "Bearer dz_x"})
    assert api.status_code == 503 and api.headers["Retry-After"] == "30"
    error = api.get_json()["error"]
    assert error["code"] == "database_unavailable" and "数据库暂时无法连接" in error["message"]
    english = client.get("/api/v1/tasks", headers={"Authorization": "Bearer dz_x", "Accept-Language": "en"})
    assert "The database cannot be reached" in english.get_json()["error"]["message"]

    page = client.get("/login")
    assert page.status_code == 503 and page.content_type.startswith("text/html")
    assert "服务暂时不可用" in page.get_data(as_text=True) and "数据库暂时无法连接" in page.get_data(as_text=True)

    health = client.get("/healthz")
    assert health.status_code == 503
    assert health.get_json()["checks"]["database"] == {"ok": False, "error": "OperationalError"}
    metrics = metric_samples(client.get("/metrics").get_data(as_text=True))
    assert metrics[("demozone_database_up", ())] == 0
    app.extensions["demozone.engine"].db.dispose()


def test_a_race_lost_at_commit_is_a_409_not_a_503(sqlite_ops: OpsDatabase) -> None:
    app = app_for(sqlite_ops.url)
    locked = OperationalError("COMMIT", {}, Exception("database is locked"))
    with app.test_request_context("/api/v1/tasks/x/complete", method="POST"):
        response = _database_error(locked)
    assert response.status_code == 409 and response.get_json()["error"]["code"] == "conflict"
    app.extensions["demozone.engine"].db.dispose()
