"""Scaling: engine completions per second with 1, 2 and 4 worker processes, PostgreSQL beside SQLite.

Run from the project root:

    .venv/bin/python bench/scaling_bench.py --quick       # 4 s per run
    .venv/bin/python bench/scaling_bench.py               # 15 s per run

**Engine level, not HTTP**: each worker is a separate OS process (as a gunicorn worker is) with its
own ``build_engine``; it completes distinct tasks through the command path the web app uses —
``write_session`` (SQLite: ``BEGIN IMMEDIATE``), ``Engine.complete_task`` (permission check, JSON
Schema validation, SpiffWorkflow run, save with the revision check, open-task index, hash-chained
history event), commit — with no HTTP, Flask or JSON encoding in between (``bench/load_test.py``
measures the whole server). The task is step a of ``tests/definitions/mini.bpmn``, which touches only
its own case, so the figures show how the engine and the database scale, not a shared hotspot (step
b numbers a 批复 on one row-locked counter and would serialize every worker).

The databases: a private PostgreSQL 15 cluster on 127.0.0.1 (``tests/support/pgcluster``; fsync and
synchronous_commit off, as in every test cluster) and a SQLite file in WAL mode (synchronous=NORMAL).
The workers start together (a barrier) and run for ``--seconds``; completions/s = all workers'
completions / wall time. Then the 1-worker PostgreSQL run is repeated under cProfile and the top
functions are printed (own time, then cumulative time), to show where a completion's time goes.
On a 2-core machine, 4 processes cannot run faster than 2: the 4-worker figure shows contention.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import multiprocessing
import os
import pstats
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.access import load_actor  # noqa: E402
from engine.db import write_session  # noqa: E402
from tests.ops.opskit import CITY_USER, mini_engine, percentile, populate  # noqa: E402
from tests.support.pgcluster import PgCluster  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from load_test import prepare, start_cases  # noqa: E402

WORKER_COUNTS = (1, 2, 4)


def worker(url: str, tasks: list[str], seconds: float, barrier, profile: str | None, queue) -> None:  # noqa: ANN001
    engine = mini_engine(url)
    with write_session(engine.sessions) as session:
        actor = load_actor(session, CITY_USER)
        engine.store.latest_version(session, "mini")  # warm: nothing to parse during the timed loop
    latencies: list[float] = []
    profiler = cProfile.Profile() if profile else None
    barrier.wait()
    deadline = time.monotonic() + seconds
    if profiler:
        profiler.enable()
    for task in tasks:
        if time.monotonic() >= deadline:
            break
        started = time.perf_counter()
        with write_session(engine.sessions) as session:
            engine.complete_task(session, actor, uuid.UUID(task), {"x": 1})
        latencies.append(time.perf_counter() - started)
    if profiler:
        profiler.disable()
        profiler.dump_stats(profile)
    engine.db.dispose()
    queue.put(latencies)


def measure(url: str, tasks: list[str], processes: int, seconds: float, profile: str | None = None) -> dict:
    """Run ``processes`` workers over disjoint slices of ``tasks``; return the figures."""
    context = multiprocessing.get_context("spawn")
    barrier, queue = context.Barrier(processes + 1), context.Queue()
    shares = [tasks[i::processes] for i in range(processes)]
    workers = [context.Process(target=worker, args=(url, share, seconds, barrier, profile, queue)) for share in shares]
    for process in workers:
        process.start()
    barrier.wait()
    started = time.perf_counter()
    results = [queue.get(timeout=seconds + 600) for _ in workers]
    elapsed = time.perf_counter() - started
    for process in workers:
        process.join(60)
    latencies = [value * 1000 for part in results for value in part]
    if sum(len(part) for part in results) >= len(tasks):
        print("(ran out of tasks: raise --cases) ", end="")
    return {
        "completions": len(latencies),
        "per_second": len(latencies) / elapsed,
        "p50": percentile(latencies, 0.5),
        "p95": percentile(latencies, 0.95),
        "mean": statistics.fmean(latencies) if latencies else float("nan"),
    }


def print_profile(path: str, top: int) -> None:
    stats = pstats.Stats(path)
    total = stats.total_tt  # type: ignore[attr-defined]
    print(f"\n  profile of the 1-worker PostgreSQL run (cProfile, {total:.1f} s of own time):")
    by_package: dict[str, float] = {}
    for (filename, _line, _name), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        by_package[_package(filename)] = by_package.get(_package(filename), 0.0) + tottime
    print("  own time by package:")
    for package, seconds in sorted(by_package.items(), key=lambda item: -item[1])[:10]:
        print(f"    {100 * seconds / total:5.1f}%  {package}")
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(path, stream=out).strip_dirs().sort_stats(order).print_stats(top)
        lines = [line for line in out.getvalue().splitlines() if line.strip()]
        start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls"))
        print(f"  top {top} by {order}:")
        for line in lines[start : start + top + 1]:
            print("    " + line[:150])


def _package(filename: str) -> str:
    if "site-packages/" in filename:
        return filename.split("site-packages/")[1].split("/")[0].split(".")[0]
    if str(ROOT) in filename:
        return "demozone " + filename.replace(str(ROOT) + "/", "").split("/")[0]
    if filename.startswith("<"):
        return "builtins"
    return "python stdlib"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="4 s per run")
    parser.add_argument("--seconds", type=float, help="per run (default 15; quick 4)")
    parser.add_argument("--cases", type=int, help="cases stored per database (default: enough for every run)")
    parser.add_argument("--top", type=int, default=20, help="profile lines to print")
    parser.add_argument("--no-profile", action="store_true")
    args = parser.parse_args()
    seconds = args.seconds or (4.0 if args.quick else 15.0)
    runs = len(WORKER_COUNTS) + (0 if args.no_profile else 1)
    cases = args.cases or int(runs * seconds * 200)
    print(
        f"scaling: engine completions/s, {seconds:g} s per run, {cases} cases per database; "
        f"{os.cpu_count()} CPU(s), load average {tuple(round(x, 2) for x in os.getloadavg())}"
    )
    folder = Path(tempfile.mkdtemp(prefix="demozone-scaling-"))
    figures: dict[str, dict[int, dict]] = {}
    try:
        with PgCluster() as cluster:
            for name, url, loaders in (
                ("postgresql", cluster.url, 2),
                ("sqlite", f"sqlite:///{folder / 'scaling.db'}", 1),
            ):
                prepare(url)
                populate(url, 0)
                started = time.perf_counter()
                with multiprocessing.get_context("spawn").Pool(loaders) as pool:
                    parts = pool.starmap(start_cases, [(url, cases // loaders)] * loaders)
                tasks = [task for part in parts for _case, task in part]
                per_run = len(tasks) // runs  # each run gets its own tasks
                chunks = [tasks[i * per_run : (i + 1) * per_run] for i in range(runs)]
                print(f"\n  {name}: {len(tasks)} cases stored in {time.perf_counter() - started:.0f} s")
                figures[name] = {}
                for processes in WORKER_COUNTS:
                    print(f"    {processes} worker(s): ", end="", flush=True)
                    result = measure(url, chunks.pop(0), processes, seconds)
                    figures[name][processes] = result
                    print(
                        f"{result['per_second']:6.1f} completions/s  (p50 {result['p50']:.0f} ms, "
                        f"p95 {result['p95']:.0f} ms, {result['completions']} completions)"
                    )
                if name == "postgresql" and not args.no_profile:
                    profile = str(folder / "profile.pstats")
                    profiled = measure(url, chunks.pop(0), 1, seconds, profile)
                    print(f"    1 worker under cProfile: {profiled['per_second']:.1f} completions/s")
                    print_profile(profile, args.top)
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    print("\n  completions/s   " + "".join(f"{n} worker(s)".rjust(14) for n in WORKER_COUNTS))
    for name, rows in figures.items():
        base = rows[1]["per_second"]
        cells = "".join(
            f"{rows[n]['per_second']:8.1f} x{rows[n]['per_second'] / base:4.2f}".rjust(14) for n in WORKER_COUNTS
        )
        print(f"  {name:15} {cells}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
