"""The timer worker SIGKILLed mid-pass: after a restart every due timer has fired exactly once.

The template holds 40 cases whose 10-day timers are due when the worker's clock says 2026-03-13.
Three runs of ``demozone worker`` (a pass every second):

1. killed as soon as its first pass holds a write transaction (one transaction: nothing of it is kept);
2. the same command with batches of 8 cases per transaction, killed as soon as the first batch is
   committed: a whole number of batches is kept, never part of one;
3. left to finish, then given another pass to show nothing fires twice.
"""

from __future__ import annotations

import sqlite3
import time
from datetime import timedelta
from pathlib import Path

import psycopg
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from engine.db import read_session
from engine.models import HistoryEvent, OpenTask
from tests.ops.conftest import CASES_AT_B, OpsDatabase
from tests.ops.opskit import START, Server, check_consistency, mini_engine

DUE = START + timedelta(days=11)
BATCH = 8


def timer_events(engine) -> dict:  # noqa: ANN001
    with read_session(engine.sessions) as session:
        rows = session.execute(
            select(HistoryEvent.instance_id, func.count())
            .where(HistoryEvent.command == "timer")
            .group_by(HistoryEvent.instance_id)
        ).all()
    return dict(rows)


def writer_active(url: str) -> bool:
    """Whether another process is inside a write transaction (the worker in the middle of a pass)."""
    if url.startswith("sqlite"):
        probe = sqlite3.connect(make_url(url).database, timeout=0, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            return False
        except sqlite3.OperationalError:  # "database is locked": someone holds the write lock
            return True
        finally:
            probe.close()
    parsed = make_url(url)
    with psycopg.connect(host=parsed.host, port=parsed.port, user=parsed.username, dbname=parsed.database) as conn:
        return bool(
            conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND xact_start IS NOT NULL AND backend_type = 'client backend'"
            ).fetchone()[0]
        )


def wait_until(condition, timeout: float) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_a_killed_timer_worker_fires_each_due_timer_exactly_once(ops_db: OpsDatabase, tmp_path: Path) -> None:
    cases = {case for case, _task in ops_db.populated.at_b}
    assert len(cases) == CASES_AT_B
    engine = mini_engine(ops_db.url, DUE)
    log = tmp_path / "worker.log"
    try:
        first = Server.timer_worker(ops_db.url, log, DUE).start()
        assert wait_until(lambda: writer_active(ops_db.url), 30), first.log_tail()
        first.kill()
        assert len(timer_events(engine)) == 0  # the pass was one transaction: none of it is kept

        second = Server.timer_worker(ops_db.url, log, DUE, batch=BATCH).start()
        assert wait_until(lambda: len(timer_events(engine)) > 0, 30), second.log_tail()
        second.kill()
        kept = len(timer_events(engine))
        assert 0 < kept < CASES_AT_B and kept % BATCH == 0, kept  # whole batches only

        with Server.timer_worker(ops_db.url, log, DUE) as third:
            assert wait_until(lambda: len(timer_events(engine)) == CASES_AT_B, 30), third.log_tail()
            time.sleep(1.5)  # another pass: nothing left to fire
        fired = timer_events(engine)
        assert set(fired) == cases and set(fired.values()) == {1}, fired
        with read_session(engine.sessions) as session:
            assert session.scalar(select(func.count()).where(OpenTask.bpmn_id == "late")) == CASES_AT_B
        assert check_consistency(engine, sorted(cases)) == []
    finally:
        engine.db.dispose()
