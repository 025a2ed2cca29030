"""Auditors' figures: replay time per finished zone-creation case, and history verification speed.

    .venv/bin/python bench/audit_bench.py [--cases 60] [--events 100000] [--profile]

Goals (issue 5): replay p95 <= 20 ms; `audit verify` >= 50,000 events/s.

Each case has its own candidate (an approval starts the candidate's zone_term case, and only one may run
per candidate): the real counties, districts and parks first, then parks of made-up bench cities, handed
out and driven to 批复 by engine_bench's candidate pool and engine driver.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.engine_bench import (  # noqa: E402
    APPROVED,
    FORMS_DIR,
    START,
    ZONE,
    CandidatePool,
    EngineDriver,
    Lane,
    Payloads,
    Timings,
    drive,
    load_average,
    make_cases,
    pct,
    real_candidates,
    user_map,
)
from engine import Settings, build_engine  # noqa: E402
from engine.audit import verify_history  # noqa: E402
from engine.clock import FixedClock  # noqa: E402
from engine.db import read_session, write_session  # noqa: E402
from engine.demo import seed_demo  # noqa: E402
from engine.history import append_event  # noqa: E402
from engine.migrate import upgrade_database  # noqa: E402
from engine.models import Instance  # noqa: E402
from engine.replay import replay_instance  # noqa: E402

GOAL_REPLAY_P95_MS = 20.0
GOAL_VERIFY_PER_S = 50_000


def approved_cases(engine, count: int) -> list[uuid.UUID]:  # noqa: ANN001
    """Drive ``count`` zone-creation cases, one per candidate, to 批复."""
    with read_session(engine.sessions) as session:
        users = user_map(session)
        pool = CandidatePool(engine, users, real_candidates(session))
    cases = make_cases(pool.take(count), ZONE)
    with tqdm(total=count * 22, desc="cases to 批复", unit="command") as bar:
        drive([Lane(EngineDriver(engine, users, Payloads([FORMS_DIR])), cases, Timings())], bar)
    approved = [c for c in cases if c.outcome == APPROVED]
    if len(approved) != count:
        raise SystemExit(f"only {len(approved)} of {count} cases reached {APPROVED}")
    return [c.instance_id for c in approved]


def synthetic_events(engine, total: int) -> None:  # noqa: ANN001
    """Append ``total`` chained events to one running case (verification cost does not depend on how)."""
    with write_session(engine.sessions) as session:
        instance = session.query(Instance).filter(Instance.status == "running").first()
        for index in tqdm(range(total), desc="appending events", unit="event"):
            append_event(
                session,
                instance,
                at=START + timedelta(seconds=index),
                actor="bench",
                command="comment",
                payload={"body": f"第{index}条意见"},
            )
            if index % 5000 == 4999:
                session.flush()


def replay_figures(engine, ids: list[uuid.UUID], profile: bool) -> None:  # noqa: ANN001
    timings, events = [], []
    with read_session(engine.sessions) as session:
        for case_id in ids:
            began = time.perf_counter()
            result = replay_instance(engine.store, session, case_id)
            timings.append((time.perf_counter() - began) * 1000)
            events.append(result.events)
            if not result.matches:
                raise SystemExit(f"replay of {case_id} differs: {result.difference}")
        if profile:
            profiler = cProfile.Profile()
            profiler.enable()
            for case_id in ids:
                replay_instance(engine.store, session, case_id)
            profiler.disable()
    p95 = pct(timings, 95)
    verdict = "PASS" if p95 <= GOAL_REPLAY_P95_MS else "MISS"
    print(
        f"replay of {len(ids)} finished zone-creation cases ({statistics.mean(events):.0f} events each on "
        f"average): p50 {statistics.median(timings):.1f} ms, p95 {p95:.1f} ms, max {max(timings):.1f} ms "
        f"(first, cold: {timings[0]:.1f} ms) (goal p95 <= {GOAL_REPLAY_P95_MS:.0f} ms: {verdict})"
    )
    if profile:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(30)
        print(f"cProfile of a second replay of the {len(ids)} cases (cumulative):\n{out.getvalue()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=60, help="finished cases to replay (>= 50 for a p95)")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--profile", action="store_true", help="print a cProfile of replay")
    args = parser.parse_args()
    print(f"load average at start: {load_average()}")
    with tempfile.TemporaryDirectory() as tmp:
        engine = build_engine(Settings(database_url=f"sqlite:///{tmp}/audit.db"), FixedClock(START))
        upgrade_database(engine.db)
        with write_session(engine.sessions) as session:
            seed_demo(session, START)
            engine.deploy(session)
        ids = approved_cases(engine, args.cases)
        replay_figures(engine, ids, args.profile)
        synthetic_events(engine, args.events)
        with read_session(engine.sessions) as session:
            began = time.perf_counter()
            result = verify_history(session)
            elapsed = time.perf_counter() - began
        rate = result.events / elapsed
        verdict = "PASS" if rate >= GOAL_VERIFY_PER_S else "MISS"
        print(
            f"audit verify: {result.events} events in {result.cases} cases in {elapsed:.2f} s = {rate:,.0f} events/s "
            f"(goal >= {GOAL_VERIFY_PER_S:,}/s: {verdict}); intact: {result.ok}"
        )
        print(f"load average at end: {load_average()}")
        engine.db.dispose()


if __name__ == "__main__":
    main()
