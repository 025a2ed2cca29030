"""How long one timer pass takes to fire many due timers: SQLite, and PostgreSQL with two workers.

Each case of a one-step process waits on a 30-day timer right after it starts; the clock then jumps
31 days and the timer job (engine.scheduler.fire_due_timers_once) fires them all.

    .venv/bin/python bench/timer_bench.py [--cases 10000] [--postgresql]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from tqdm import tqdm

from engine import Settings, build_engine
from engine.access import load_actor
from engine.clock import FixedClock
from engine.db import begin_write, read_session, write_session
from engine.demo import seed_demo
from engine.migrate import upgrade_database
from engine.models import HistoryEvent, OrgUnit
from engine.scheduler import fire_due_timers_once

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.support.pgcluster
START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
PROCESS = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="d" targetNamespace="http://demozone">
  <bpmn:process id="timer_wait" name="计时等待" isExecutable="true">
    <bpmn:laneSet id="ls"><bpmn:lane id="l" name="city_sa"><bpmn:flowNodeRef>start</bpmn:flowNodeRef>
      <bpmn:flowNodeRef>wait</bpmn:flowNodeRef><bpmn:flowNodeRef>ack</bpmn:flowNodeRef>
      <bpmn:flowNodeRef>end</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>
    <bpmn:startEvent id="start" name="开始"/>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="wait"/>
    <bpmn:intermediateCatchEvent id="wait" name="等待30日">
      <bpmn:timerEventDefinition><bpmn:timeDuration>"P30D"</bpmn:timeDuration></bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:sequenceFlow id="f2" sourceRef="wait" targetRef="ack"/>
    <bpmn:userTask id="ack" name="已阅">
      <bpmn:extensionElements><spiffworkflow:properties>
        <spiffworkflow:property name="formJsonSchemaFilename" value="ack.json"/></spiffworkflow:properties>
      </bpmn:extensionElements>
    </bpmn:userTask>
    <bpmn:sequenceFlow id="f3" sourceRef="ack" targetRef="end"/>
    <bpmn:endEvent id="end" name="结束"/>
  </bpmn:process>
</bpmn:definitions>
"""


def prepare(url: str, workdir: Path, cases: int) -> None:
    (workdir / "forms").mkdir(parents=True, exist_ok=True)
    (workdir / "timer_wait.bpmn").write_text(PROCESS, encoding="utf-8")
    (workdir / "forms" / "ack.json").write_text('{"type": "object", "properties": {}}', encoding="utf-8")
    engine = build_engine(
        Settings(database_url=url, processes_dir=workdir, forms_dir=workdir / "forms"), FixedClock(START)
    )
    upgrade_database(engine.db)
    with write_session(engine.sessions) as session:
        seed_demo(session, START)
        engine.deploy(session)
        counties = session.scalars(select(OrgUnit.code).where(OrgUnit.parent_code == "210100")).all()
    with write_session(engine.sessions) as session:
        actor = load_actor(session, "shenyang_sa")
        for index in tqdm(range(cases), desc="starting cases", unit="case"):
            engine.start_instance(session, actor, "timer_wait", {"county_code": counties[index % len(counties)]})
            if index % 500 == 499:
                session.commit()
                begin_write(session)
    engine.db.dispose()


def run_pass(url: str, workdir: Path, workers: int) -> tuple[float, int]:
    later = FixedClock(START + timedelta(days=31))
    engines = [
        build_engine(Settings(database_url=url, processes_dir=workdir, forms_dir=workdir / "forms"), later)
        for _ in range(workers)
    ]
    moved = [0] * workers
    barrier = threading.Barrier(workers)

    def work(index: int) -> None:
        barrier.wait()
        moved[index] = fire_due_timers_once(engines[index])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    with read_session(engines[0].sessions) as session:
        events = session.scalar(select(func.count()).where(HistoryEvent.command == "timer"))
    for engine in engines:
        engine.db.dispose()
    assert sum(moved) == events, f"moved {sum(moved)} cases but {events} timer events"
    return elapsed, events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--postgresql", action="store_true", help="also two workers on a throwaway cluster")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        url = f"sqlite:///{workdir / 'timers.db'}"
        prepare(url, workdir, args.cases)
        elapsed, fired = run_pass(url, workdir, 1)
        print(f"SQLite, 1 worker: {fired} due timers fired in {elapsed:.1f} s ({fired / elapsed:.0f}/s)")
        if args.postgresql:
            from tests.support.pgcluster import PgCluster

            with PgCluster() as cluster:
                pg_url = cluster.create_database("timers")
                prepare(pg_url, workdir, args.cases)
                elapsed, fired = run_pass(pg_url, workdir, 2)
                print(
                    f"PostgreSQL, 2 workers: {fired} due timers fired in {elapsed:.1f} s ({fired / elapsed:.0f}/s),"
                    " each exactly once"
                )


if __name__ == "__main__":
    main()
