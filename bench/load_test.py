"""Load test: many clients completing tasks over the JSON API, half of them racing for the same task.

Run from the project root:

    .venv/bin/python bench/load_test.py --quick          # 500 cases, 20 s per backend
    .venv/bin/python bench/load_test.py                  # 10,000 cases, 120 s per backend

For each backend (``--backend postgresql,sqlite``):

1. a throwaway database: PostgreSQL in a private cluster on 127.0.0.1 (``tests/support/pgcluster``;
   fsync off, as every test cluster), or a SQLite file in WAL mode in a temporary folder; migrated,
   with the Liaoning demo data, the real processes and ``tests/definitions/mini.bpmn``;
2. ``--cases`` cases of ``mini`` started through the engine (``populate``; two loader processes on
   PostgreSQL), each waiting at step a (沈阳市科协); step b (新民市委) follows; completing b numbers
   a 批复 (a row-locked counter, so every b completion queues on one row, as real approvals do);
3. ``demozone serve``: 4 gunicorn workers x 4 threads on PostgreSQL, 1 worker x 16 threads on SQLite;
4. ``--clients`` client threads for ``--seconds``: half complete distinct cases (a, then b); the other
   half in pairs, both members sending the same completion at the same moment (a barrier), a then b.
   Bearer tokens from ``web.security.issue_token`` (what ``demozone token USER`` prints).

Then the checks, each printed PASS/FAIL: no 5xx and no broken connection; no "database is locked"
in any answer; each 2xx completion has exactly one completion event and no task has two; in every
raced pair exactly one request won and the other got 409; every running mini case has exactly one open
task and every finished one none; ``demozone audit verify`` and ``demozone replay --all`` clean.
Figures: completions/s (2xx), requests/s, and p50/p95/p99 latency of the completion requests.
Everything listens on and talks to 127.0.0.1 only; every loop is bounded in time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from engine import Settings, build_engine  # noqa: E402
from engine.access import load_actor  # noqa: E402
from engine.clock import FixedClock  # noqa: E402
from engine.db import read_session, write_session  # noqa: E402
from engine.demo import seed_demo  # noqa: E402
from engine.migrate import upgrade_database  # noqa: E402
from engine.models import Instance, OpenTask  # noqa: E402
from tests.ops.opskit import (  # noqa: E402
    CITY_USER,
    DEMOZONE,
    START,
    Attempt,
    Reply,
    Server,
    call,
    check_attempts,
    complete,
    completion_events,
    mini_engine,
    percentile,
    populate,
    server_env,
)
from tests.support.pgcluster import PgCluster  # noqa: E402

A_DATA, B_DATA = {"x": 5}, {"b_decision": "同意"}


def prepare(url: str) -> None:
    engine = build_engine(Settings(database_url=url), FixedClock(START))
    try:
        upgrade_database(engine.db)
        with write_session(engine.sessions) as session:
            seed_demo(session, START)
            engine.deploy(session)
    finally:
        engine.db.dispose()


def start_cases(url: str, count: int) -> list[tuple[str, str]]:
    """``count`` mini cases at step a, 50 per transaction (in a loader process)."""
    engine = mini_engine(url)
    made: list[tuple[str, str]] = []
    try:
        while len(made) < count:
            with write_session(engine.sessions) as session:
                city = load_actor(session, CITY_USER)
                for _ in range(min(50, count - len(made))):
                    view = engine.start_instance(session, city, "mini", {"county_code": "210181"})
                    made.append((str(view.id), str(view.open_tasks[0].id)))
    finally:
        engine.db.dispose()
    return made


def store_cases(url: str, count: int, loaders: int) -> tuple[dict[str, str], list[tuple[uuid.UUID, uuid.UUID]]]:
    started = time.perf_counter()
    base = populate(url, 0)  # mini deployed, tokens, one approved case (the year's counter row)
    shares = [count // loaders + (1 if i < count % loaders else 0) for i in range(loaders)]
    with ProcessPoolExecutor(loaders) as pool:
        parts = list(pool.map(start_cases, [url] * loaders, shares))
    cases = [(uuid.UUID(c), uuid.UUID(t)) for part in parts for c, t in part]
    elapsed = time.perf_counter() - started
    print(f"  stored {len(cases)} cases in {elapsed:.0f} s ({len(cases) / elapsed:.0f}/s, {loaders} loader(s))")
    return base.tokens, cases


@dataclass
class Record:
    kind: str  # "distinct" or "race"
    attempt: Attempt
    reply: Reply


@dataclass
class Run:
    port: int
    tokens: dict[str, str]
    deadline: float
    records: list[Record] = field(default_factory=list)
    other: list[Reply] = field(default_factory=list)
    raced: list[tuple[uuid.UUID, list[int | None]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def post(self, kind: str, task: uuid.UUID, user: str, data: dict) -> Reply:
        reply = complete(self.port, self.tokens[user], task, data, timeout=120)
        with self.lock:
            self.records.append(Record(kind, Attempt(task, reply.status, reply.seconds, body=reply.text), reply))
        return reply

    def next_task(self, case: uuid.UUID, replies: list[Reply]) -> uuid.UUID | None:
        won = [r for r in replies if r.status == 200]
        if won:
            tasks = won[0].json()["open_tasks"]
        else:
            view = call(self.port, "GET", f"/api/v1/instances/{case}", self.tokens["auditor"], timeout=120)
            with self.lock:
                self.other.append(view)
            tasks = view.json()["open_tasks"] if view.status == 200 else []
        return uuid.UUID(tasks[0]["id"]) if tasks else None

    def distinct(self, cases: list[tuple[uuid.UUID, uuid.UUID]]) -> None:
        for case, task in cases:
            if time.monotonic() >= self.deadline:
                return
            task_b = self.next_task(case, [self.post("distinct", task, "shenyang_sa", A_DATA)])
            if task_b is not None and time.monotonic() < self.deadline:
                self.post("distinct", task_b, "xinmin_party", B_DATA)

    def race(self, cases: list, barrier: threading.Barrier, me: int, slot: list, state: dict) -> None:
        """Both members of a pair run this over the same cases and send each completion together."""
        try:
            for case, task in cases:
                for user, data in (("shenyang_sa", A_DATA), ("xinmin_party", B_DATA)):
                    if barrier.wait(timeout=300) == 0:
                        state["stop"] = time.monotonic() >= self.deadline
                    barrier.wait(timeout=300)
                    if state["stop"]:
                        return
                    slot[me] = self.post("race", task, user, data)
                    barrier.wait(timeout=300)
                    if me == 0:
                        self.raced.append((task, [slot[0].status, slot[1].status]))
                    following = self.next_task(case, [slot[0], slot[1]]) if user == "shenyang_sa" else None
                    barrier.wait(timeout=300)
                    if user == "shenyang_sa":
                        if following is None:
                            break
                        task = following
        except threading.BrokenBarrierError:
            return


def drive(port: int, tokens: dict[str, str], cases: list, clients: int, seconds: float) -> tuple[Run, float]:
    run = Run(port, tokens, time.monotonic() + seconds)
    distinct_clients, pairs = clients // 2, (clients - clients // 2) // 2
    groups = distinct_clients + pairs
    shares = [cases[i::groups] for i in range(groups)]
    threads = [threading.Thread(target=run.distinct, args=(shares[i],)) for i in range(distinct_clients)]
    for index in range(pairs):
        barrier, slot, state = threading.Barrier(2), [None, None], {"stop": False}
        share = shares[distinct_clients + index]
        threads += [threading.Thread(target=run.race, args=(share, barrier, me, slot, state)) for me in (0, 1)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 300)
    return run, time.perf_counter() - started


def cli_check(url: str, *args: str) -> tuple[bool, dict]:
    env = server_env(url)
    result = subprocess.run(  # noqa: S603 - our own console script
        [str(DEMOZONE), *args, "--json"], env=env, capture_output=True, text=True, cwd=ROOT, check=False
    )
    try:
        body = json.loads(result.stdout)
    except json.JSONDecodeError:
        body = {"stdout": result.stdout[-500:], "stderr": result.stderr[-500:]}
    return result.returncode == 0, body


def index_problems(url: str) -> int:
    """Running mini cases with other than one open task, finished ones with any."""
    engine = mini_engine(url)
    try:
        with read_session(engine.sessions) as session:
            counts = (
                select(Instance.id, Instance.status, func.count(OpenTask.id).label("n"))
                .outerjoin(OpenTask, OpenTask.instance_id == Instance.id)
                .where(Instance.process_id == "mini")
                .group_by(Instance.id, Instance.status)
                .subquery()
            )
            return session.scalar(
                select(func.count()).where(
                    ((counts.c.status == "running") & (counts.c.n != 1))
                    | ((counts.c.status == "completed") & (counts.c.n != 0))
                )
            )
    finally:
        engine.db.dispose()


def report(name: str, run: Run, elapsed: float, url: str, log: Path) -> bool:
    replies = [r.reply for r in run.records] + run.other
    completions = [r for r in run.records]
    ok = [r for r in completions if r.reply.status == 200]
    latencies = [r.reply.seconds * 1000 for r in completions]
    statuses: dict[str, int] = {}
    for r in completions:
        statuses[str(r.reply.status)] = statuses.get(str(r.reply.status), 0) + 1
    print(f"  {len(completions)} completion requests in {elapsed:.1f} s: {statuses}")
    print(
        f"  throughput: {len(ok) / elapsed:.1f} completions/s (2xx), {len(replies) / elapsed:.1f} requests/s; "
        f"latency p50 {percentile(latencies, 0.5):.0f} ms, p95 {percentile(latencies, 0.95):.0f} ms, "
        f"p99 {percentile(latencies, 0.99):.0f} ms"
    )
    for kind in ("distinct", "race"):
        part = [r.reply.seconds * 1000 for r in completions if r.kind == kind]
        won = sum(1 for r in completions if r.kind == kind and r.reply.status == 200)
        print(
            f"    {kind:8}: {len(part)} requests, {won} 2xx, p50 {percentile(part, 0.5):.0f} ms, "
            f"p95 {percentile(part, 0.95):.0f} ms, p99 {percentile(part, 0.99):.0f} ms"
        )

    checks: list[tuple[str, bool, str]] = []
    errors = [r for r in replies if r.status is None or r.status >= 500]
    checks.append(("no 5xx, no broken connection", not errors, str([(r.status, r.error) for r in errors[:3]])))
    locked = [r for r in replies if "locked" in r.text.lower()]
    checks.append(('no "database is locked" reached a client', not locked, locked[0].text[:200] if locked else ""))
    engine = mini_engine(url)
    try:
        events = completion_events(engine)
    finally:
        engine.db.dispose()
    problems = check_attempts([r.attempt for r in completions], events)
    checks.append(("each 2xx has exactly one completion event; none twice", not problems, "; ".join(problems[:3])))
    unfair = [(task, pair) for task, pair in run.raced if sorted(pair) != [200, 409]]
    checks.append((f"each of {len(run.raced)} raced pairs: one 200, one 409", not unfair, str(unfair[:3])))
    stale = index_problems(url)
    checks.append(("open-task index matches every case's state", stale == 0, f"{stale} case(s)"))
    started = time.perf_counter()
    verified, body = cli_check(url, "audit", "verify")
    checks.append((f"demozone audit verify ({time.perf_counter() - started:.0f} s)", verified, json.dumps(body)[:300]))
    print(f"  audit verify: {body.get('events')} events in {body.get('cases')} cases")
    started = time.perf_counter()
    replayed, body = cli_check(url, "replay", "--all")
    checks.append((f"demozone replay --all ({time.perf_counter() - started:.0f} s)", replayed, json.dumps(body)[:300]))
    print(f"  replay --all: {body.get('matching')} of {body.get('cases')} cases match")
    for label, passed, detail in checks:
        print(f"  {'PASS' if passed else 'FAIL'}  {label}" + ("" if passed else f": {detail}"))
    if not all(passed for _label, passed, _detail in checks):
        print(f"  server log: {log}")
    return all(passed for _label, passed, _detail in checks)


def run_backend(name: str, args: argparse.Namespace, folder: Path) -> bool:
    print(f"\n== {name} ==")
    cluster = None
    if name == "postgresql":
        cluster = PgCluster().__enter__()
        url, workers, threads, loaders = cluster.url, args.pg_workers, 4, 2
    else:
        url, workers, threads, loaders = f"sqlite:///{folder / 'load.db'}", 1, args.sqlite_threads, 1
    try:
        prepare(url)
        tokens, cases = store_cases(url, args.cases, loaders)
        log = folder / f"server-{name}.log"
        with Server.web(url, log, workers=workers, threads=threads) as server:
            print(f"  demozone serve: {workers} worker(s) x {threads} thread(s), {args.clients} clients")
            run, elapsed = drive(server.port, tokens, cases, args.clients, args.seconds)
        return report(name, run, elapsed, url, log)
    finally:
        if cluster is not None:
            cluster.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="500 cases, 20 s per backend")
    parser.add_argument("--cases", type=int, help="cases stored (default 10000; quick 500)")
    parser.add_argument("--seconds", type=float, help="load duration per backend (default 120; quick 20)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--pg-workers", type=int, default=4)
    parser.add_argument("--sqlite-threads", type=int, default=16)
    parser.add_argument("--backend", default="postgresql,sqlite", help="comma-separated: postgresql, sqlite")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (SQLite file, logs)")
    args = parser.parse_args()
    args.cases = args.cases or (500 if args.quick else 10_000)
    args.seconds = args.seconds or (20.0 if args.quick else 120.0)
    folder = Path(tempfile.mkdtemp(prefix="demozone-load-"))
    print(f"load test: {args.cases} cases, {args.clients} clients, {args.seconds:g} s; load average {os.getloadavg()}")
    results = {}
    try:
        for name in [b.strip() for b in args.backend.split(",") if b.strip()]:
            results[name] = run_backend(name, args, folder)
    finally:
        if args.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    print("\n" + "  ".join(f"{name}: {'PASS' if ok else 'FAIL'}" for name, ok in results.items()))
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
