"""Designer-tools benchmark: how long validation takes, and how fast ``simulate`` drives cases.

Run from the project root:

    .venv/bin/python bench/designer_bench.py                 # ~1 minute
    .venv/bin/python bench/designer_bench.py --runs 3 --instances 20

It prints, each a median of ``--runs`` runs:

1. validation of all of processes/: deploy's check (XSD, engine rules, SpiffWorkflow parse, via
   ``engine.specs.load_definitions``), the structural lint (``engine.lint.lint_files``), and both;
2. the same for the largest file of the MIWG corpus (../shared/corpus/miwg), and the lint of the whole corpus;
3. ``simulate`` throughput for zone_creation: cases per second on a temporary SQLite file, as
   ``demozone simulate`` runs it (schema, demo users and the deploy of processes/ come first and
   are not counted), plus commands per case and coverage.

Never imported by the tests.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime

from engine import Settings
from engine.designer_cli import run_simulation
from engine.lint import lint_files
from engine.programme import SERVICES
from engine.settings import PROJECT_ROOT
from engine.specs import load_definitions

PROCESSES = PROJECT_ROOT / "processes"
FORMS = PROJECT_ROOT / "forms"
MIWG = PROJECT_ROOT.parent / "shared" / "corpus" / "miwg"
START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def median_seconds(action: Callable[[], object], runs: int) -> float:
    action()  # warm-up: imports, XSD schema load, caches
    timings = []
    for _ in range(runs):
        began = time.perf_counter()
        action()
        timings.append(time.perf_counter() - began)
    return statistics.median(timings)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def bench_validation(runs: int) -> None:
    files = sorted([*PROCESSES.glob("*.bpmn"), *PROCESSES.glob("*.dmn")])
    bpmn = [p for p in files if p.suffix == ".bpmn"]
    size = sum(p.stat().st_size for p in files) / 1024
    _bundles, findings = load_definitions(files, FORMS, SERVICES)
    errors = sum(1 for f in findings if f.severity == "error")
    print(f"\nvalidation of processes/ ({len(files)} files, {size:.0f} KB; {errors} error finding(s) today)")
    check = median_seconds(lambda: load_definitions(files, FORMS, SERVICES), runs)
    lint = median_seconds(lambda: lint_files(bpmn), runs)
    print(f"  deploy check (XSD, engine rules, SpiffWorkflow) {ms(check)}")
    print(f"  structural lint                                 {ms(lint)}")
    print(f"  both                                            {ms(check + lint)}")
    if not MIWG.is_dir():
        print(f"\nMIWG corpus not found at {MIWG}: skipped")
        return
    corpus = sorted(MIWG.glob("*.bpmn"))
    largest = max(corpus, key=lambda p: p.stat().st_size)
    print(f"\nvalidation of the largest MIWG file, {largest.name} ({largest.stat().st_size / 1024:.0f} KB)")
    check = median_seconds(lambda: load_definitions([largest], FORMS, SERVICES), runs)
    lint = median_seconds(lambda: lint_files([largest]), runs)
    print(f"  deploy check {ms(check)}\n  lint         {ms(lint)}\n  both         {ms(check + lint)}")
    whole = median_seconds(lambda: lint_files(corpus), runs)
    print(f"  lint of all {len(corpus)} corpus files together {ms(whole)}")


def bench_simulation(process_id: str, instances: int, seed: int, runs: int) -> None:
    rates, report = [], None
    for _ in range(runs):
        began = time.perf_counter()
        report = run_simulation(Settings(fixed_now=START), process_id, instances, seed, progress_bar=False)
        setup = time.perf_counter() - began - report.elapsed
        rates.append(instances / report.elapsed)
    assert report is not None
    rate = statistics.median(rates)
    steps = statistics.mean(r.steps for r in report.instances)
    nodes = len(report.node_coverage) - len(report.unreached_nodes)
    flows = len(report.flow_coverage) - len(report.unreached_flows)
    print(f"\nsimulate {process_id}: {instances} cases x {runs} run(s), seed {seed}, temporary SQLite file")
    print(f"  throughput (median)   {rate:8.2f} cases/s  (runs: {', '.join(f'{r:.2f}' for r in rates)})")
    print(f"  per case              {1000 / rate:8.1f} ms, {steps:.1f} engine commands on average")
    print(f"  setup, not counted    {setup:8.2f} s (migrate, demo users, deploy of processes/)")
    print(f"  outcomes {report.outcomes()}; stuck {len(report.stuck)}, failed {len(report.failed)}")
    print(f"  coverage: nodes {nodes}/{len(report.node_coverage)}, flows {flows}/{len(report.flow_coverage)}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="runs per validation figure (median)")
    parser.add_argument("--sim-runs", type=int, default=3, help="simulation runs (median)")
    parser.add_argument("--instances", type=int, default=50, help="cases per simulation run")
    parser.add_argument("--process", default="zone_creation")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    print(f"designer bench, Python {sys.version.split()[0]}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    bench_validation(args.runs)
    bench_simulation(args.process, args.instances, args.seed, args.sim_runs)


if __name__ == "__main__":
    main()
