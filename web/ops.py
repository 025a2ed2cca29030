"""Blueprint ``ops``: ``/healthz`` for load balancers and ``/metrics`` for Prometheus.

``/healthz`` answers JSON, 200 or 503: the database is reachable, its schema is at the Alembic head,
and how far the oldest due timer of a running case lies in the past (timer lag). A lag over
``HEALTHZ_TIMER_LAG_LIMIT`` seconds (default 300) marks the answer ``degraded`` but keeps it 200, so a
stopped timer worker does not take the web workers out of rotation; ``?strict=1`` makes it a 503.

``/metrics`` builds a new registry for each scrape. What the database knows (open tasks by process,
completed tasks, cases, timer lag) is read from it, so every gunicorn worker answers the same. What
only a process sees (conflicts, command latency, responses by status) is kept in this process; with
``PROMETHEUS_MULTIPROC_DIR`` set (an empty directory, before the server starts) prometheus_client
adds up the files of all workers instead. ``DEMOZONE_METRICS_TOKEN``, when set, is required as a
bearer token.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import time
from datetime import datetime
from functools import lru_cache
from typing import Any

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Blueprint, Response, current_app, g, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import func, select, text
from sqlalchemy.engine import Connection

from engine import AppEngine
from engine.clock import as_utc
from engine.errors import Conflict
from engine.migrate import alembic_config
from engine.models import HistoryEvent, Instance, OpenTask
from web.db import get_engine
from web.errors import DATABASE_ERRORS, engine_error_response
from web.extensions import csrf

bp = Blueprint("ops", __name__)
csrf.exempt(bp)

DEFAULT_TIMER_LAG_LIMIT = 300.0
COMPLETING_COMMANDS = ("complete", "return")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# Process-local (or, with PROMETHEUS_MULTIPROC_DIR, per-process files summed at scrape time).
CONFLICTS = Counter(
    "demozone_conflicts", "Requests refused with 409 because of a concurrent change (Conflict)", registry=None
)
COMMAND_SECONDS = Histogram(
    "demozone_command_duration_seconds",
    "Time to serve a state-changing request (engine command, commit included), by endpoint",
    ["endpoint"],
    buckets=LATENCY_BUCKETS,
    registry=None,
)
RESPONSES = Counter("demozone_http_responses", "HTTP responses by status code", ["code"], registry=None)
LOCAL_METRICS = (CONFLICTS, COMMAND_SECONDS, RESPONSES)


@lru_cache(maxsize=1)
def migration_heads() -> tuple[str, ...]:
    """The Alembic head revision(s) this code expects (read once per process)."""
    return tuple(sorted(ScriptDirectory.from_config(alembic_config()).get_heads()))


def _timer_lag(connection: Connection, now: datetime) -> tuple[float, datetime | None, int]:
    """Seconds since the oldest due timer of a running case (0 when none is due), that time, and how many."""
    row = connection.execute(
        select(func.min(Instance.next_timer_at), func.count()).where(
            Instance.status == "running", Instance.next_timer_at <= now
        )
    ).one()
    oldest = as_utc(row[0]) if row[0] is not None else None
    return (max(0.0, (now - oldest).total_seconds()) if oldest else 0.0), oldest, int(row[1])


@bp.route("/healthz")
def healthz() -> Any:
    engine: AppEngine = get_engine()
    limit = float(current_app.config.get("HEALTHZ_TIMER_LAG_LIMIT", DEFAULT_TIMER_LAG_LIMIT))
    checks: dict[str, Any] = {}
    started = time.perf_counter()
    try:
        with engine.db.connect() as connection:
            connection.execute(text("SELECT 1"))
            checks["database"] = {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}
            current = tuple(sorted(MigrationContext.configure(connection).get_current_heads()))
            checks["migrations"] = {"ok": current == migration_heads(), "current": current, "head": migration_heads()}
            lag, oldest, due = _timer_lag(connection, engine.now())
            checks["timers"] = {
                "ok": lag <= limit,
                "lag_seconds": round(lag, 1),
                "oldest_due_at": oldest.isoformat() if oldest else None,
                "due_cases": due,
                "limit_seconds": limit,
            }
    except DATABASE_ERRORS as exc:
        current_app.logger.warning("healthz: database unavailable: %s", exc)
        checks["database"] = {"ok": False, "error": type(exc).__name__}
    essential = all(checks.get(name, {}).get("ok") for name in ("database", "migrations"))
    timers_ok = checks.get("timers", {}).get("ok", False)
    status = "ok" if essential and timers_ok else "degraded" if essential else "unavailable"
    strict = request.args.get("strict", "").lower() in ("1", "true", "yes")
    code = 200 if status == "ok" or (status == "degraded" and not strict) else 503
    return jsonify({"status": status, "checks": checks, "time": engine.now().isoformat()}), code


class DatabaseCollector:
    """The figures every worker reads alike from the database, collected at scrape time."""

    def __init__(self, engine: AppEngine) -> None:
        self.engine = engine

    def collect(self):  # noqa: ANN201 - prometheus_client's collector protocol
        up = GaugeMetricFamily("demozone_database_up", "1 when the database answered this scrape")
        try:
            families = self._from_database()
        except DATABASE_ERRORS as exc:
            current_app.logger.warning("metrics: database unavailable: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _from_database(self) -> list[Any]:
        now = self.engine.now()
        with self.engine.db.connect() as connection:
            open_tasks = connection.execute(
                select(OpenTask.process_id, func.count()).group_by(OpenTask.process_id)
            ).all()
            completed = connection.execute(
                select(Instance.process_id, func.count())
                .select_from(HistoryEvent)
                .join(Instance, Instance.id == HistoryEvent.instance_id)
                .where(HistoryEvent.command.in_(COMPLETING_COMMANDS))
                .group_by(Instance.process_id)
            ).all()
            cases = connection.execute(
                select(Instance.process_id, Instance.status, func.count()).group_by(
                    Instance.process_id, Instance.status
                )
            ).all()
            lag, _oldest, due = _timer_lag(connection, now)
        tasks = GaugeMetricFamily("demozone_open_tasks", "Open (ready) user tasks by process", labels=["process"])
        for process, count in open_tasks:
            tasks.add_metric([process], count)
        done = CounterMetricFamily(
            "demozone_tasks_completed",
            "User tasks completed or returned (history events) by process",
            labels=["process"],
        )
        for process, count in completed:
            done.add_metric([process], count)
        case_gauge = GaugeMetricFamily("demozone_cases", "Cases by process and status", labels=["process", "status"])
        for process, status, count in cases:
            case_gauge.add_metric([process, status], count)
        lag_gauge = GaugeMetricFamily("demozone_timer_lag_seconds", "Age of the oldest due, unfired timer")
        lag_gauge.add_metric([], lag)
        due_gauge = GaugeMetricFamily("demozone_timers_due", "Running cases whose next timer is due")
        due_gauge.add_metric([], due)
        return [tasks, done, case_gauge, lag_gauge, due_gauge]


def build_registry(engine: AppEngine) -> CollectorRegistry:
    """A fresh registry for one scrape: the database figures plus this process's (or all workers') own."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(engine))
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)
    else:
        for metric in LOCAL_METRICS:
            registry.register(metric)
    return registry


@bp.route("/metrics")
def metrics() -> Any:
    token = os.environ.get("DEMOZONE_METRICS_TOKEN") or current_app.config.get("METRICS_TOKEN")
    if token:
        scheme, _, given = (request.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), str(token).encode()):
            return Response("unauthorized\n", 401, {"WWW-Authenticate": 'Bearer realm="metrics"'})
    body = generate_latest(build_registry(get_engine()))
    return Response(body, 200, {"Content-Type": CONTENT_TYPE_LATEST})


@bp.teardown_app_request
def _close_session_quietly(_exc: BaseException | None) -> None:
    """Close the request's database session before ``web.db`` does, tolerating a dead connection.

    When the database goes away between a request's last query and its end, the rollback in
    ``Session.close()`` raises; from a teardown that would reach gunicorn as a bare 500 after the
    response was built. Request teardowns run before ``web.db``'s app-context teardown, which then
    finds no session left to close.
    """
    session = g.pop("_db_session", None)
    if session is None:
        return
    try:
        session.close()
    except DATABASE_ERRORS as exc:
        current_app.logger.warning("database connection lost while closing the session: %s", exc)
        with contextlib.suppress(*DATABASE_ERRORS):
            session.invalidate()  # drop the broken connection instead of returning it to the pool


@bp.app_errorhandler(Conflict)
def _count_conflict(exc: Conflict) -> Any:
    CONFLICTS.inc()
    return engine_error_response(exc)


@bp.before_app_request
def _start_timer() -> None:
    g.ops_started = time.perf_counter()


@bp.after_app_request
def _observe(response: Response) -> Response:
    RESPONSES.labels(str(response.status_code)).inc()
    started = g.pop("ops_started", None)
    if started is not None and request.method not in ("GET", "HEAD", "OPTIONS") and request.endpoint:
        COMMAND_SECONDS.labels(request.endpoint).observe(time.perf_counter() - started)
    return response
