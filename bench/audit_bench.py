"""Auditors' figures: replay time per finished zone-creation case, and history verification speed.

    .venv/bin/python bench/audit_bench.py [--cases 30] [--events 100000]

Goals (issue 5): replay p95 <= 20 ms; `audit verify` >= 50,000 events/s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.support

from engine import Settings, build_engine  # noqa: E402
from engine.audit import verify_history  # noqa: E402
from engine.clock import FixedClock  # noqa: E402
from engine.db import read_session, write_session  # noqa: E402
from engine.demo import seed_demo  # noqa: E402
from engine.history import append_event  # noqa: E402
from engine.migrate import upgrade_database  # noqa: E402
from engine.models import Instance, OrgUnit  # noqa: E402
from engine.replay import replay_instance  # noqa: E402
from tests.support.scenario import Scenario  # noqa: E402
from tests.support.zone import GOOD, evaluate, fill  # noqa: E402

START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def approved_cases(engine, count: int) -> list[uuid.UUID]:  # noqa: ANN001
    """Drive ``count`` zone-creation cases of 沈阳 and 大连 counties to 批复."""
    with read_session(engine.sessions) as session:
        from sqlalchemy import select

        counties = session.scalars(
            select(OrgUnit.code).where(OrgUnit.parent_code.in_(("210100", "210200")), OrgUnit.kind != "society")
        ).all()
    ids = []
    for index in tqdm(range(count), desc="cases to 批复", unit="case"):
        county = counties[index % len(counties)]
        city = "shenyang" if county.startswith("2101") else "dalian"
        case = Scenario(engine)
        from engine.models import RoleAssignment, User

        with write_session(engine.sessions) as session:  # county users for counties without demo users
            for role in ("county_party", "county_gov"):
                name = f"bench_{county}_{role}"
                if session.scalar(select(User.id).where(User.username == name)) is None:
                    user = User(username=name, display_name=name, password_hash="x", created_at=START)
                    user.roles.append(RoleAssignment(role=role, org_code=county))
                    session.add(user)
        case.start(f"{city}_sa", "zone_creation", {"county_code": county})
        case.complete(f"{city}_sa", "recommend", fill("recommend"))
        case.complete(f"{city}_talent", "talent_cosign", fill("talent_cosign", talent_decision="同意"))
        case.complete(f"bench_{county}_county_party", "research_report", fill("research_report"))
        case.complete(f"{city}_org", "org_consent", fill("org_consent", consent_decision="同意"))
        case.complete(f"{city}_sa", "joint_request", fill("joint_request"))
        case.complete(f"bench_{county}_county_gov", "joint_cosign", fill("joint_cosign", cosign_decision="同意"))
        evaluate(case, {"S001": GOOD, "S002": GOOD})
        case.complete("province_office", "province_decision", fill("province_decision", province_decision="批准"))
        ids.append(case.instance_id)
    return ids


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=30)
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        engine = build_engine(Settings(database_url=f"sqlite:///{tmp}/audit.db"), FixedClock(START))
        upgrade_database(engine.db)
        with write_session(engine.sessions) as session:
            seed_demo(session, START)
            engine.deploy(session)
        ids = approved_cases(engine, args.cases)
        timings = []
        with read_session(engine.sessions) as session:
            for case_id in ids:
                began = time.perf_counter()
                result = replay_instance(engine.store, session, case_id)
                timings.append((time.perf_counter() - began) * 1000)
                assert result.matches, result.difference
        timings.sort()
        p95 = timings[min(len(timings) - 1, int(len(timings) * 0.95))]
        print(
            f"replay of {len(ids)} finished zone-creation cases: p50 {statistics.median(timings):.1f} ms, "
            f"p95 {p95:.1f} ms (goal p95 <= 20 ms: {'PASS' if p95 <= 20 else 'MISS'})"
        )
        synthetic_events(engine, args.events)
        with read_session(engine.sessions) as session:
            began = time.perf_counter()
            result = verify_history(session)
            elapsed = time.perf_counter() - began
        rate = result.events / elapsed
        print(
            f"audit verify: {result.events} events in {result.cases} cases in {elapsed:.2f} s = {rate:,.0f} events/s "
            f"(goal >= 50,000/s: {'PASS' if rate >= 50_000 else 'MISS'}); intact: {result.ok}"
        )
        engine.db.dispose()


if __name__ == "__main__":
    main()
