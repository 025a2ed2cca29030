"""Commands for process designers: ``demozone simulate`` and ``demozone lint``.

``engine.cli`` registers ``COMMANDS`` on its main group. This module does not import ``engine.cli``,
so either can be imported first.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import click
from tqdm import tqdm

from engine import Settings, build_engine
from engine.clock import FixedClock
from engine.coverage import ElementCoverage, SimulationReport
from engine.db import write_session
from engine.demo import seed_demo
from engine.errors import EngineError
from engine.lint import lint_files
from engine.migrate import upgrade_database
from engine.simulate import simulate


def _settings(ctx: click.Context) -> Settings:
    # The main group's object is the engine built from the environment; reuse its folders.
    engine = ctx.find_root().obj
    return engine.settings if isinstance(getattr(engine, "settings", None), Settings) else Settings.from_env()


def _fail(exc: EngineError) -> None:
    for finding in exc.details if isinstance(exc.details, list) else []:
        click.echo(str(finding), err=True)
    click.echo(f"错误 / error: [{exc.code}] {exc.message}", err=True)
    sys.exit(1)


def run_simulation(settings: Settings, process: str, instances: int, seed: int, **options: object) -> SimulationReport:
    """Simulate on a fresh temporary SQLite database: migrated, seeded with demo users, processes deployed."""
    # The clock starts at DEMOZONE_NOW if set, else today 09:00 Shenyang time, and only moves forward.
    start = settings.fixed_now or datetime.now(UTC).replace(hour=1, minute=0, second=0, microsecond=0)
    progress_bar = options.pop("progress_bar", True)
    with tempfile.TemporaryDirectory(prefix="demozone-simulate-") as folder:
        url = f"sqlite:///{Path(folder) / 'simulation.db'}"
        engine = build_engine(dataclasses.replace(settings, database_url=url, fixed_now=None), FixedClock(start))
        try:
            upgrade_database(engine.db)
            with write_session(engine.sessions) as session:
                seed_demo(session, start)
                engine.deploy(session)
            with tqdm(total=instances, unit="case", desc=process, disable=not progress_bar, file=sys.stderr) as bar:
                return simulate(engine, process, instances, seed, bar.update, **options)  # type: ignore[arg-type]
        finally:
            engine.db.dispose()


def _percent(part: int, whole: int) -> str:
    return f"{part}/{whole} ({100 * part / whole:.0f}%)" if whole else "0/0"


def _element(item: ElementCoverage) -> str:
    if item.kind == "sequenceFlow":
        return f"flow {item.element_id}: {item.source} -> {item.target}" + (f" [{item.name}]" if item.name else "")
    return f"node {item.element_id} {item.name or ''} ({item.kind})"


def print_report(report: SimulationReport, verbose: bool = False) -> None:
    total = len(report.instances)
    rate = total / report.elapsed if report.elapsed else 0.0
    click.echo(f"{report.process_id} v{report.version}: {total} case(s), seed {report.seed}, ", nl=False)
    click.echo(f"{report.elapsed:.1f} s ({rate:.2f} cases/s)")
    outcomes = ", ".join(f"{name} {count}" for name, count in sorted(report.outcomes().items()))
    click.echo(f"  completed {len(report.completed)} ({outcomes or '-'}), ", nl=False)
    click.echo(f"stuck {len(report.stuck)}, failed {len(report.failed)}")
    reached_nodes = len(report.node_coverage) - len(report.unreached_nodes)
    reached_flows = len(report.flow_coverage) - len(report.unreached_flows)
    click.echo(f"  flow nodes reached {_percent(reached_nodes, len(report.node_coverage))}, ", nl=False)
    click.echo(f"sequence flows taken {_percent(reached_flows, len(report.flow_coverage))}")
    if verbose:
        for item in report.node_coverage + report.flow_coverage:
            click.echo(f"  {item.instances:>5}  {_element(item)}")
    unreached = report.unreached_nodes + report.unreached_flows
    if unreached:
        click.echo("  never reached:")
        for item in unreached:
            click.echo(f"    {_element(item)}")
    for result in report.stuck + report.failed:
        case = f"#{result.index} {result.county_code or '-'} ({result.instance_id or 'not started'})"
        click.echo(f"  {result.status} {case} after {result.steps} step(s): {result.reason}")


@click.command("simulate")
@click.argument("process")
@click.option("--instances", "-n", type=click.IntRange(min=1), default=20, show_default=True, help="cases to run")
@click.option("--seed", type=int, default=1, show_default=True, help="the same seed gives the same paths")
@click.option("--max-steps", type=click.IntRange(min=1), default=200, show_default=True, help="per case")
@click.option("--verbose", "-v", is_flag=True, help="list every element with its case count")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def simulate_command(
    ctx: click.Context, process: str, instances: int, seed: int, max_steps: int, verbose: bool, as_json: bool
) -> None:
    """Drive cases of PROCESS to the end on a throwaway database and report coverage.

    Forms get schema-valid data with random decisions; steps are sometimes returned (退回); timers
    fire as the simulated clock moves on. Exit 1 if any case failed.
    """
    try:
        report = run_simulation(_settings(ctx), process, instances, seed, max_steps=max_steps, progress_bar=not as_json)
    except EngineError as exc:
        _fail(exc)
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        print_report(report, verbose)
    sys.exit(1 if report.failed else 0)


@click.command("lint")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True)
def lint_command(files: tuple[Path, ...], as_json: bool) -> None:
    """Check BPMN FILES against the structural rules only (no forms, no SpiffWorkflow parse); exit 1 on errors."""
    findings = lint_files(files)
    if as_json:
        click.echo(json.dumps([f.to_dict() for f in findings], ensure_ascii=False, indent=2))
    else:
        for finding in findings:
            click.echo(str(finding))
        errors = sum(1 for f in findings if f.severity == "error")
        click.echo(f"{len(files)} file(s) linted, {errors} error(s), {len(findings) - errors} warning(s)")
    sys.exit(1 if any(f.severity == "error" for f in findings) else 0)


COMMANDS = [simulate_command, lint_command]
