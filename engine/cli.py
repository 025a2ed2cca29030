"""The ``demozone`` command line: set up the database, deploy, and act on cases as a user.

Every command opens one transaction; errors print one clear line and exit non-zero.
"""

from __future__ import annotations

import functools
import json
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from sqlalchemy import func, select
from tqdm import tqdm

from engine import build_engine
from engine.access import load_actor
from engine.audit import export_events, verify_history
from engine.db import read_session, write_session
from engine.demo import seed_demo
from engine.designer_cli import COMMANDS as DESIGNER_COMMANDS
from engine.errors import EngineError, InvalidInput, SpecInvalid
from engine.migrate import upgrade_database
from engine.models import HistoryEvent, Instance, User
from engine.replay import replay_instance
from engine.runtime import InstanceView, TaskView


def _fail(message: str, code: int = 1) -> None:
    click.echo(f"错误 / error: {message}", err=True)
    sys.exit(code)


def handle_errors(command: Callable) -> Callable:
    """Turn engine errors (and anything unexpected) into one line on stderr, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except SpecInvalid as exc:
            for finding in exc.details or []:
                click.echo(str(finding), err=True)
            _fail(exc.message)
        except InvalidInput as exc:
            details = exc.details if isinstance(exc.details, dict) else {}
            _fail(exc.message + "".join(f"\n  {k or '(data)'}: {v}" for k, v in details.items()))
        except EngineError as exc:
            _fail(f"[{exc.code}] {exc.message}")
        except (ValueError, OSError) as exc:
            _fail(str(exc), 2)

    return wrapper


def parse_data(value: str | None) -> dict[str, Any]:
    """``--data`` takes inline JSON or ``@file.json``."""
    if not value:
        return {}
    text = value
    if value.startswith("@"):
        try:
            text = Path(value[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"cannot read {value[1:]}: {exc.strerror}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--data is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from exc
    if not isinstance(data, dict):
        raise ValueError("--data must be a JSON object")
    return data


def parse_uuid(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise ValueError(f"{what} {value!r} is not a valid id") from exc


def _print_json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, indent=2))


def _print_instance(view: InstanceView, as_json: bool) -> None:
    if as_json:
        _print_json(view.to_dict())
        return
    click.echo(
        f"{view.id}  {view.process} v{view.version}  {view.status}"
        + (f" ({view.outcome})" if view.outcome else "")
        + f"  {view.business_key}"
    )
    for task in view.open_tasks:
        click.echo(f"  待办 {task.id}  {task.step}  {task.name}  [{task.role_title} {task.org_code}]")


@click.group()
@click.pass_context
def main(ctx: click.Context) -> None:
    """demozone: Liaoning 创新驱动助力示范区（县） workflows."""
    ctx.obj = build_engine()


def _engine(ctx: click.Context):  # noqa: ANN202
    return ctx.obj


@main.command()
@click.pass_context
@handle_errors
def init(ctx: click.Context) -> None:
    """Create or migrate the database, then deploy processes/."""
    engine = _engine(ctx)
    upgrade_database(engine.db)
    with write_session(engine.sessions) as session:
        for result in engine.deploy(session):
            state = "deployed" if result.created else "unchanged"
            click.echo(f"{result.process_id} v{result.version} {state} ({result.content_hash[:12]})")


@main.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
@click.pass_context
@handle_errors
def db_upgrade(ctx: click.Context) -> None:
    """Apply Alembic migrations up to the newest revision."""
    upgrade_database(_engine(ctx.find_root()).db)
    click.echo("database is at the newest revision")


@main.command("seed-demo")
@click.pass_context
@handle_errors
def seed_demo_command(ctx: click.Context) -> None:
    """Load Liaoning org units, societies and demo users (idempotent)."""
    engine = _engine(ctx)
    with write_session(engine.sessions) as session:
        units, users = seed_demo(session, engine.now())
    click.echo(f"org units added: {units}, demo users added: {users}")


@main.command()
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def users(ctx: click.Context, as_json: bool) -> None:
    """List users and their roles."""
    with read_session(_engine(ctx).sessions) as session:
        rows = session.scalars(select(User).order_by(User.username)).all()
        listing = [
            {
                "username": u.username,
                "display_name": u.display_name,
                "active": u.active,
                "roles": [{"role": a.role, "org_code": a.org_code} for a in u.roles],
            }
            for u in rows
        ]
    if as_json:
        _print_json(listing)
        return
    for user in listing:
        roles = ", ".join(f"{r['role']}@{r['org_code']}" for r in user["roles"])
        click.echo(f"{user['username']:<22} {user['display_name']:<24} {roles}")


@main.group()
def user() -> None:
    """User administration (role admin); every change is recorded in the administrators' chain."""


def _parse_role(value: str) -> tuple[str, str]:
    role, _, org_code = value.partition("@")
    if not role or not org_code:
        raise ValueError(f"--role {value!r}: write ROLE@ORG_CODE, e.g. city_sa@210100")
    return role, org_code


def _user_command(name: str, help_text: str, run: Callable, *options: Callable) -> None:
    def command(ctx: click.Context, username: str, admin: str, **values: Any) -> None:
        from engine import useradmin

        engine = _engine(ctx.find_root())
        with write_session(engine.sessions) as session:
            changed = run(useradmin, session, load_actor(session, admin), engine.now(), username, **values)
            roles = ", ".join(f"{a.role}@{a.org_code}" for a in changed.roles)
            click.echo(
                f"{changed.username}  {changed.display_name}  {'active' if changed.active else 'DISABLED'}  {roles}"
            )

    for option in reversed(options):
        command = option(command)
    command = click.option("--as", "admin", required=True, help="the administrator making the change")(command)
    command = click.argument("username")(command)
    user.command(name, help=help_text)(click.pass_context(handle_errors(command)))


_PASSWORD = click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
_user_command(
    "add",
    "Add a user with --name, --password and any number of --role ROLE@ORG.",
    lambda m, s, a, now, username, name, password, role, email: m.add_user(
        s, a, now, username, name, password, [_parse_role(r) for r in role], email
    ),
    click.option("--name", required=True, help="display name"),
    _PASSWORD,
    click.option("--role", multiple=True, help="ROLE@ORG_CODE, repeatable"),
    click.option("--email", default=None),
)
_user_command(
    "disable", "Disable a user: no sign-in, no API token.", lambda m, s, a, now, u: m.set_active(s, a, now, u, False)
)
_user_command("enable", "Enable a disabled user again.", lambda m, s, a, now, u: m.set_active(s, a, now, u, True))
_user_command(
    "grant",
    "Grant --role ROLE@ORG.",
    lambda m, s, a, now, u, role: m.grant_role(s, a, now, u, *_parse_role(role)),
    click.option("--role", required=True, help="ROLE@ORG_CODE"),
)
_user_command(
    "revoke",
    "Revoke --role ROLE@ORG.",
    lambda m, s, a, now, u, role: m.revoke_role(s, a, now, u, *_parse_role(role)),
    click.option("--role", required=True, help="ROLE@ORG_CODE"),
)
_user_command(
    "password",
    "Set a new password.",
    lambda m, s, a, now, u, password: m.set_password(s, a, now, u, password),
    _PASSWORD,
)


@main.command()
@click.pass_context
@handle_errors
def deploy(ctx: click.Context) -> None:
    """Validate processes/ and store a new version of every process that changed."""
    engine = _engine(ctx)
    with write_session(engine.sessions) as session:
        for result in engine.deploy(session):
            state = "deployed" if result.created else "unchanged"
            click.echo(f"{result.process_id} v{result.version} {state} ({result.content_hash[:12]})")


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def validate(ctx: click.Context, files: tuple[Path, ...], as_json: bool) -> None:
    """Check BPMN/DMN files; exit 1 on any error."""
    _bundles, findings = _engine(ctx).check_definitions(files)
    if as_json:
        _print_json([f.to_dict() for f in findings])
    else:
        for finding in findings:
            click.echo(str(finding))
    errors = sum(1 for f in findings if f.severity == "error")
    if not as_json:
        click.echo(f"{len(files)} file(s) checked, {errors} error(s)")
    if errors:
        sys.exit(1)


@main.command()
@click.argument("process")
@click.option("--as", "username", required=True)
@click.option("--data", "data", default=None, help="JSON object or @file.json")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def start(ctx: click.Context, process: str, username: str, data: str | None, as_json: bool) -> None:
    """Start a case of PROCESS as USER."""
    engine = _engine(ctx)
    payload = parse_data(data)
    with write_session(engine.sessions) as session:
        view = engine.start_instance(session, load_actor(session, username), process, payload)
    _print_instance(view, as_json)


@main.command()
@click.option("--as", "username", required=True)
@click.option("--process", default=None)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def tasks(ctx: click.Context, username: str, process: str | None, as_json: bool) -> None:
    """List USER's open tasks (待办)."""
    engine = _engine(ctx)
    with read_session(engine.sessions) as session:
        listing: list[TaskView] = engine.list_tasks(session, load_actor(session, username), process)
    if as_json:
        _print_json([t.to_dict() for t in listing])
        return
    now = engine.now()
    for task in listing:
        due = task.due_at.date().isoformat() if task.due_at else "-"
        overdue = " 已逾期" if task.is_overdue(now) else ""
        click.echo(f"{task.id}  {task.case_title}  {task.name} ({task.step})  截止 {due}{overdue}")
    click.echo(f"待办 {len(listing)} 件")


@main.command()
@click.argument("task_id")
@click.option("--as", "username", default=None, help="check the task as this user (default: no check)")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def form(ctx: click.Context, task_id: str, username: str | None, as_json: bool) -> None:
    """Print the JSON Schema of a task's form."""
    engine = _engine(ctx)
    with read_session(engine.sessions) as session:
        schema = engine.task_form(
            session, parse_uuid(task_id, "task"), load_actor(session, username) if username else None
        )
    click.echo(json.dumps(schema, ensure_ascii=False, indent=2 if as_json else None))


def _task_command(name: str, help_text: str, run: Callable) -> None:
    @main.command(name, help=help_text)
    @click.argument("task_id")
    @click.option("--as", "username", required=True)
    @click.option("--data", "data", default=None, help="JSON object or @file.json")
    @click.option("--reason", default=None)
    @click.option("--json", "as_json", is_flag=True)
    @click.pass_context
    @handle_errors
    def command(
        ctx: click.Context, task_id: str, username: str, data: str | None, reason: str | None, as_json: bool
    ) -> None:
        engine = _engine(ctx)
        with write_session(engine.sessions) as session:
            actor = load_actor(session, username)
            result = run(engine, session, actor, parse_uuid(task_id, "task"), parse_data(data), reason)
        if isinstance(result, InstanceView):
            _print_instance(result, as_json)
        elif as_json:
            _print_json(result.to_dict())
        else:
            click.echo(f"{result.id} {result.name}: claimed by {result.claimed_by or '-'}")


_task_command(
    "complete", "Complete TASK_ID as USER with --data.", lambda e, s, a, t, data, _r: e.complete_task(s, a, t, data)
)
_task_command(
    "return",
    "Return (退回) TASK_ID as USER with --reason.",
    lambda e, s, a, t, _d, reason: e.return_task(s, a, t, reason or ""),
)
_task_command("claim", "Claim (签收) TASK_ID as USER.", lambda e, s, a, t, _d, _r: e.claim_task(s, a, t))
_task_command("unclaim", "Give back a claimed task.", lambda e, s, a, t, _d, _r: e.unclaim_task(s, a, t))


@main.command()
@click.argument("instance_id")
@click.option("--as", "username", default="auditor", show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def show(ctx: click.Context, instance_id: str, username: str, as_json: bool) -> None:
    """Show a case: status, open tasks and data."""
    engine = _engine(ctx)
    with read_session(engine.sessions) as session:
        view = engine.get_instance(session, load_actor(session, username), parse_uuid(instance_id, "instance"))
    _print_instance(view, as_json)
    if not as_json:
        click.echo(json.dumps(view.data, ensure_ascii=False, indent=2))


@main.command()
@click.argument("instance_id")
@click.option("--as", "username", required=True)
@click.option("--reason", required=True, help="why the case ends early (recorded in its history)")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def terminate(ctx: click.Context, instance_id: str, username: str, reason: str, as_json: bool) -> None:
    """终止: end a running case early (省科协 or admin), with its child cases."""
    engine = _engine(ctx)
    with write_session(engine.sessions) as session:
        actor = load_actor(session, username)
        view = engine.terminate_instance(session, actor, parse_uuid(instance_id, "instance"), reason)
    _print_instance(view, as_json)


@main.group()
def timers() -> None:
    """Timers (use DEMOZONE_NOW to move the clock)."""


@timers.command("run")
@click.pass_context
@handle_errors
def timers_run(ctx: click.Context) -> None:
    """Fire every timer that is due now."""
    engine = _engine(ctx.find_root())
    with write_session(engine.sessions) as session:
        fired = engine.fire_due_timers(session)
    click.echo(f"{engine.now().isoformat()}: timers fired in {len(fired)} case(s)")


@main.group()
def audit() -> None:
    """Auditors' checks of the history."""


@audit.command("verify")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def audit_verify(ctx: click.Context, as_json: bool) -> None:
    """Check every case's hash chain; exit 1 naming the first broken event."""
    engine = _engine(ctx.find_root())
    with read_session(engine.sessions) as session:
        total = session.scalar(select(func.count()).select_from(HistoryEvent)) or 0
        with tqdm(total=total, unit="event", disable=as_json or total < 10_000, file=sys.stderr) as bar:
            result = verify_history(session, bar.update)
    if as_json:
        _print_json(result.to_dict())
    elif result.ok:
        click.echo(
            f"history intact: {result.events} events in {result.cases} cases, {result.admin_events} admin events, "
            f"{result.checkpoints} checkpoints" + (f"; latest anchor {result.anchor}" if result.anchor else "")
        )
    else:
        click.echo(f"history BROKEN: {result.first_break} ({len(result.breaks)} case(s) affected)")
    sys.exit(0 if result.ok else 1)


@audit.command("anchor")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def audit_anchor(ctx: click.Context, as_json: bool) -> None:
    """Write a checkpoint of the whole log and print its hash (publish it outside the system)."""
    from engine.checkpoints import write_checkpoint

    engine = _engine(ctx.find_root())
    with write_session(engine.sessions) as session:
        checkpoint = write_checkpoint(session, engine.now(), "cli")
        summary = {
            "seq": checkpoint.seq,
            "at": checkpoint.at.isoformat(),
            "cases": checkpoint.case_count,
            "events": checkpoint.event_count,
            "admin_events": checkpoint.admin_event_count,
            "hash": checkpoint.hash,
        }
    if as_json:
        _print_json(summary)
        return
    click.echo(
        f"checkpoint #{summary['seq']} at {summary['at']}: {summary['cases']} cases, {summary['events']} events, "
        f"{summary['admin_events']} admin events"
    )
    click.echo(f"anchor hash: {summary['hash']}")


@main.command()
@click.argument("instance_id")
@click.option("--format", "fmt", type=click.Choice(["json", "csv"]), default="json", show_default=True)
@click.option("--as", "username", default="auditor", show_default=True)
@click.pass_context
@handle_errors
def history(ctx: click.Context, instance_id: str, fmt: str, username: str) -> None:
    """Export a case's history events."""
    engine = _engine(ctx)
    with read_session(engine.sessions) as session:
        events = engine.history(session, load_actor(session, username), parse_uuid(instance_id, "instance"))
        click.echo(export_events(events, fmt), nl=False)


@main.command()
@click.argument("instance_id", required=False)
@click.option("--all", "replay_all", is_flag=True, help="replay every case")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def replay(ctx: click.Context, instance_id: str | None, replay_all: bool, as_json: bool) -> None:
    """Rebuild a case from its history and compare it with the stored state; exit 1 on a difference."""
    engine = _engine(ctx)
    if bool(instance_id) == replay_all:
        raise ValueError("give either an INSTANCE id or --all")
    with read_session(engine.sessions) as session:
        if instance_id:
            results = [replay_instance(engine.store, session, parse_uuid(instance_id, "instance"))]
        else:
            ids = session.scalars(select(Instance.id).order_by(Instance.created_at)).all()
            results = [
                replay_instance(engine.store, session, i)
                for i in tqdm(ids, unit="case", disable=as_json, file=sys.stderr)
            ]
    failed = [r for r in results if not r.matches]
    if as_json:
        _print_json(
            results[0].to_dict()
            if instance_id
            else {
                "cases": len(results),
                "matching": len(results) - len(failed),
                "differences": [r.to_dict() for r in failed],
            }
        )
    else:
        for r in failed:
            click.echo(f"{r.instance_id}: DIFFERS: {r.difference}")
        click.echo(f"{len(results) - len(failed)} of {len(results)} case(s) replay to their stored state")
    sys.exit(1 if failed else 0)


@main.command()
@click.option("--interval", default=10.0, show_default=True, help="seconds between timer passes")
@click.pass_context
@handle_errors
def worker(ctx: click.Context, interval: float) -> None:
    """Run the timer job in this process until stopped (one or more workers may run at once)."""
    from engine.scheduler import build_scheduler

    engine = _engine(ctx)
    click.echo(f"timer worker: a pass every {interval:g} s; Ctrl-C stops it")
    scheduler = build_scheduler(engine, interval, blocking=True)
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        scheduler.shutdown(wait=False)


def _verify_after(engine, what: str) -> None:  # noqa: ANN001
    with read_session(engine.sessions) as session:
        result = verify_history(session)
    if not result.ok:
        _fail(f"{what}, but the history does not verify: {result.first_break}")
    click.echo(f"{what}; history verified: {result.events} events in {result.cases} cases")


@main.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.pass_context
@handle_errors
def backup(ctx: click.Context, path: Path) -> None:
    """Back up the database to PATH (SQLite online backup, or pg_dump), then verify the copy."""
    from engine import Settings, build_engine
    from engine.backup import backup_database

    engine = _engine(ctx)
    backup_database(engine.settings.database_url, path)
    if engine.db.url.get_backend_name() == "sqlite":
        copy = build_engine(Settings(database_url=f"sqlite:///{path.resolve()}"), engine.clock)
        try:
            _verify_after(copy, f"backed up to {path}")
        finally:
            copy.db.dispose()
    else:
        _verify_after(engine, f"backed up to {path}")


@main.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--yes", is_flag=True, help="replace the current database without asking")
@click.pass_context
@handle_errors
def restore(ctx: click.Context, path: Path, yes: bool) -> None:
    """Replace the database with the backup at PATH, then verify it."""
    from engine.backup import restore_database

    engine = _engine(ctx)
    if not yes:
        click.confirm(f"Replace {engine.db.url.render_as_string(hide_password=True)} with {path}?", abort=True)
    engine.db.dispose()
    restore_database(engine.settings.database_url, path)
    _verify_after(engine, f"restored from {path}")


@main.command()
@click.option("--as", "username", default="province_office", show_default=True)
@click.option("--xlsx", "xlsx", type=click.Path(path_type=Path), default=None, help="also write a workbook")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def overview(ctx: click.Context, username: str, xlsx: Path | None, as_json: bool) -> None:
    """The programme overview: every zone's status, term and grades, against the 10–15 target."""
    from engine.overview import build_overview, overview_dict, overview_workbook

    engine = _engine(ctx)
    with read_session(engine.sessions) as session:
        result = build_overview(session, load_actor(session, username), engine.now())
    if xlsx:
        xlsx.write_bytes(overview_workbook(result))
    if as_json:
        _print_json(overview_dict(result))
        return
    low, high = result.target
    click.echo(f"示范区 {result.approved} 个已批复（目标 {low}–{high} 个）")
    for status, count in result.by_status().items():
        click.echo(f"  {status}: {count}")
    for city, zones in result.by_city().items():
        click.echo(f"{city}: " + "、".join(f"{z.county_name}（{z.status}）" for z in zones))


for _command in DESIGNER_COMMANDS:
    main.add_command(_command)


@main.group()
def batch() -> None:
    """申报批次: open a call for recommendations, list batches with their counts."""


@batch.command("open")
@click.option("--year", type=int, required=True)
@click.option("--quota", type=int, required=True, help="10–15")
@click.option("--deadline", required=True, help="YYYY-MM-DD")
@click.option("--as", "username", default="province_office", show_default=True)
@click.pass_context
@handle_errors
def batch_open(ctx: click.Context, year: int, quota: int, deadline: str, username: str) -> None:
    """Open a batch (省科协)."""
    from datetime import date

    from engine.batches import open_batch

    engine = _engine(ctx.find_root())
    with write_session(engine.sessions) as session:
        opened = open_batch(
            session, load_actor(session, username), year, quota, date.fromisoformat(deadline), engine.now()
        )
        click.echo(f"opened batch {opened.id}: {opened.name}, quota {opened.quota}, deadline {opened.deadline}")


@batch.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def batch_list(ctx: click.Context, as_json: bool) -> None:
    """Batches with recommended and approved counts against the quota."""
    from engine.batches import list_batches

    engine = _engine(ctx.find_root())
    with read_session(engine.sessions) as session:
        batches = list_batches(session)
    if as_json:
        _print_json(
            [{**b.__dict__, "opens_on": b.opens_on.isoformat(), "deadline": b.deadline.isoformat()} for b in batches]
        )
        return
    for b in batches:
        state = "开放" if b.is_open(engine.now().date()) else "已截止"
        click.echo(
            f"{b.id} {b.name} [{state}] 截止 {b.deadline}  推荐 {b.recommended} / 批复 {b.approved} / 名额 {b.quota}"
        )


@main.command()
@click.argument("instance_ids", nargs=-1, required=True)
@click.option("--to-version", "to_version", type=int, required=True, help="the target version number")
@click.option("--plan", "plan_only", is_flag=True, help="show what would change, migrate nothing")
@click.option("--as", "username", default="designer", show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@handle_errors
def migrate(
    ctx: click.Context, instance_ids: tuple[str, ...], to_version: int, plan_only: bool, username: str, as_json: bool
) -> None:
    """Move running cases to another version of their process (refused, with the reason, when unsafe)."""
    from engine.migration import migrate_instances, plan_migration
    from engine.models import ProcessVersion

    engine = _engine(ctx)
    ids = [parse_uuid(value, "instance") for value in instance_ids]
    with write_session(engine.sessions) as session:
        actor = load_actor(session, username)
        first = session.get(Instance, ids[0])
        if first is None:
            raise ValueError(f"instance {ids[0]} not found")
        target = session.scalar(
            select(ProcessVersion.id).where(
                ProcessVersion.process_id == first.process_id, ProcessVersion.version == to_version
            )
        )
        if target is None:
            raise ValueError(f"{first.process_id} has no version {to_version}")
        if plan_only:
            plans = [plan_migration(engine, session, actor, i, target) for i in ids]
        else:
            plans = migrate_instances(engine, session, actor, ids, target)
    if as_json:
        _print_json([p.to_dict() for p in plans])
        return
    for p in plans:
        verdict = "safe" if p.safe else "UNSAFE: " + "; ".join(p.reasons)
        action = "would move" if plan_only else "moved"
        click.echo(
            f"{p.instance_id}: {action} v{p.from_version} → v{p.to_version} ({verdict}); "
            f"added {p.added}, removed {p.removed}, changed {p.changed}"
        )


@main.group()
def documents() -> None:
    """Official documents (公文) of a case."""


@documents.command("regenerate")
@click.argument("instance_id")
@click.option("--as", "username", default="province_office", show_default=True)
@click.pass_context
@handle_errors
def documents_regenerate(ctx: click.Context, instance_id: str, username: str) -> None:
    """Issue the documents a case's data calls for; check stored ones re-render byte for byte."""
    from engine.documents import regenerate_documents

    engine = _engine(ctx.find_root())
    with write_session(engine.sessions) as session:
        results = regenerate_documents(engine, session, load_actor(session, username), parse_uuid(instance_id, "case"))
        for result in results:
            click.echo(f"{result.kind}  {result.document_no}  {result.status}")
