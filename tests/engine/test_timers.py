"""The timer job: exactly-once firing with several workers, missed timers, coalesced cycles."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

from sqlalchemy import event, func, select

from engine import Settings, build_engine
from engine.clock import FixedClock
from engine.db import read_session, write_session
from engine.models import HistoryEvent, OpenTask
from engine.scheduler import build_scheduler, fire_due_timers_once
from tests.support.scenario import Scenario

DEFINITIONS = Path(__file__).parent.parent / "definitions"
COUNTIES = ["210181", "210124", "210123", "210102", "210103"]


def mini_engine(url: str, clock: FixedClock):
    return build_engine(Settings(database_url=url, processes_dir=DEFINITIONS, forms_dir=DEFINITIONS / "forms"), clock)


def cases_waiting_on_timers(url: str, clock: FixedClock, count: int) -> None:
    engine = mini_engine(url, clock)
    try:
        with write_session(engine.sessions) as session:
            engine.deploy(session)
        for index in range(count):
            case = Scenario(engine)
            case.start("shenyang_sa", "mini", {"county_code": COUNTIES[index % len(COUNTIES)]})
            case.complete("shenyang_sa", "a", {"x": index})
    finally:
        engine.db.dispose()


def test_two_workers_fire_each_due_timer_exactly_once(database_url: str, clock: FixedClock) -> None:
    cases_waiting_on_timers(database_url, clock, 40)
    later = FixedClock(clock.now() + timedelta(days=11))
    workers = [mini_engine(database_url, later) for _ in range(2)]
    moved: list[int] = []
    barrier = threading.Barrier(2)

    def run(engine) -> None:
        barrier.wait()
        moved.append(fire_due_timers_once(engine))

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    try:
        assert sum(moved) == 40
        with read_session(workers[0].sessions) as session:
            timer_events = session.execute(
                select(HistoryEvent.instance_id, func.count())
                .where(HistoryEvent.command == "timer")
                .group_by(HistoryEvent.instance_id)
            ).all()
            late_tasks = session.scalar(select(func.count()).where(OpenTask.bpmn_id == "late"))
        assert len(timer_events) == 40 and all(count == 1 for _, count in timer_events)
        assert late_tasks == 40
        assert fire_due_timers_once(workers[0]) == 0
    finally:
        for worker in workers:
            worker.db.dispose()


def test_timers_missed_while_nothing_ran_fire_once_when_the_scheduler_starts(sqlite_url: str, clock) -> None:
    cases_waiting_on_timers(sqlite_url, clock, 3)
    engine = mini_engine(sqlite_url, FixedClock(clock.now() + timedelta(days=100)))
    scheduler = build_scheduler(engine, interval_seconds=3600)
    try:
        scheduler.start()
        deadline = threading.Event()
        for _ in range(100):
            with read_session(engine.sessions) as session:
                if session.scalar(select(func.count()).where(HistoryEvent.command == "timer")) == 3:
                    break
            deadline.wait(0.1)
        with read_session(engine.sessions) as session:
            assert session.scalar(select(func.count()).where(HistoryEvent.command == "timer")) == 3
            assert session.scalar(select(func.count()).where(OpenTask.bpmn_id == "late")) == 3
    finally:
        scheduler.shutdown(wait=True)
        engine.db.dispose()


def test_the_timer_pass_finds_due_cases_through_their_index(sqlite_url: str, clock: FixedClock) -> None:
    cases_waiting_on_timers(sqlite_url, clock, 3)
    engine = mini_engine(sqlite_url, clock)
    due_queries = []

    def capture(_connection, _cursor, statement, parameters, _context, _executemany) -> None:  # noqa: ANN001
        if "next_timer_at <=" in statement:
            due_queries.append((statement, parameters))

    event.listen(engine.db, "before_cursor_execute", capture)
    try:
        with write_session(engine.sessions) as session:
            engine.fire_due_timers(session)
        [(statement, parameters)] = due_queries
        with engine.db.connect() as connection:
            rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
        plan = " ".join(str(row) for row in rows)
    finally:
        engine.db.dispose()
    # Not every running case read and sorted on each pass (every 10 s): the due ones, in order, from the index.
    assert "ix_instance_status_next_timer_at" in plan and "TEMP B-TREE" not in plan
