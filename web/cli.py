"""The ``demozone`` console script: every ``engine.cli`` command, plus ``serve`` and ``token``.

``serve`` runs the app under gunicorn (pre-fork workers; Unix only), the production server this project
documents. ``engine`` stays free of Flask: this module is the only place the two meet.
"""

from __future__ import annotations

import gc
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import click

from engine import build_engine
from engine import cli as engine_cli
from engine.db import write_session
from engine.settings import PROJECT_ROOT
from web.security import issue_token, revoke_tokens

SECRET_KEY_FILE = PROJECT_ROOT / "instance" / "secret_key"
DEFAULT_WORKERS = min(8, os.cpu_count() or 1)  # one per CPU; a bigger host sets --workers itself


@click.group()
@click.pass_context
def main(ctx: click.Context) -> None:
    """demozone: Liaoning 创新驱动助力示范区（县） workflows."""
    ctx.obj = build_engine()


for _name, _command in engine_cli.main.commands.items():
    main.add_command(_command, _name)


def demo_secret_key(path: Path = SECRET_KEY_FILE) -> str:
    """The demo's secret key, made once and kept in instance/secret_key (readable by the owner only)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32), encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()


@main.command()
@click.argument("username")
@click.option("--revoke", is_flag=True, help="revoke all of USER's tokens instead")
@click.pass_context
@engine_cli.handle_errors
def token(ctx: click.Context, username: str, revoke: bool) -> None:
    """Print a new API token for USER (only its SHA-256 is stored)."""
    engine = ctx.obj
    with write_session(engine.sessions) as session:
        if revoke:
            click.echo(f"revoked {revoke_tokens(session, username)} token(s) of {username}")
            return
        value = issue_token(session, username, engine.now())
    click.echo(value)


def _timer_hooks(interval: float) -> dict[str, Any]:
    """Gunicorn hooks that run `demozone worker` (the timer job) beside the server, as its own process."""
    worker: list[subprocess.Popen] = []

    def when_ready(_server: Any) -> None:
        command = [sys.executable, "-m", "engine", "worker", "--interval", f"{interval:g}"]
        worker.append(subprocess.Popen(command))  # noqa: S603 - our own interpreter and module

    def on_exit(_server: Any) -> None:
        for process in worker:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()

    return {"when_ready": when_ready, "on_exit": on_exit}


# A worker's requests make few reference cycles, but with CPython's default thresholds (700, 10, 10) the
# collector ran every other request, and each full collection walked everything the worker holds: the
# app, its process specs, the live workflows. bench/README.md has the figures.
WORKER_GC_THRESHOLDS = (20_000, 10, 10)


def settle_garbage_collector() -> None:
    """For a booted web worker: what it holds now (modules, mappers, specs) stays until it exits, so
    the collector stops walking it (``gc.freeze``), and young objects are collected less often."""
    gc.freeze()
    gc.set_threshold(*WORKER_GC_THRESHOLDS)


def worker_class(threads: int) -> str:
    """gunicorn's worker for ``threads`` per process: one is the sync worker, more the gthread worker.

    A sync worker takes the oldest waiting connection when it is free, so requests are served in arrival
    order; a gthread worker keeps each keep-alive connection to itself, and a busy worker's queue waits
    while another idles (bench/README.md). The sync worker closes each connection: the reverse proxy in
    front keeps the clients' connections alive.
    """
    return "sync" if threads == 1 else "gthread"


class _Gunicorn:  # built lazily: gunicorn is imported only by `serve`
    @staticmethod
    def run(options: dict[str, Any]) -> None:
        from gunicorn.app.base import BaseApplication

        class Application(BaseApplication):
            def load_config(self) -> None:
                for key, value in options.items():
                    self.cfg.set(key, value)

            def load(self):  # noqa: ANN202
                from web import create_app  # in each worker, after the fork

                app = create_app()
                settle_garbage_collector()
                return app

        Application().run()


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=DEFAULT_WORKERS, show_default=True, type=click.IntRange(1, 64),
              help="processes (default: one per CPU, at most 8)")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1, 64),
              help="threads per process: 1 is gunicorn's sync worker, more its gthread worker")
@click.option("--demo", is_flag=True, help="local demo: make instance/secret_key if DEMOZONE_SECRET_KEY is unset")
@click.option("--timers/--no-timers", default=True, show_default=True, help="also run the timer worker")
@click.option("--timer-interval", default=10.0, show_default=True, help="seconds between timer passes")
@click.option(
    "--access-log/--no-access-log",
    default=False,
    show_default=True,
    help="gunicorn's access log on stdout (the reverse proxy's log is the one with the client's address)",
)
def serve(
    host: str, port: int, workers: int, threads: int, demo: bool, timers: bool, timer_interval: float, access_log: bool
) -> None:
    """Serve the web app with gunicorn (the production server), and the timer worker beside it."""

    if not os.environ.get("DEMOZONE_SECRET_KEY"):
        if not demo:
            click.echo("错误 / error: set DEMOZONE_SECRET_KEY (or use --demo for a local demo)", err=True)
            sys.exit(2)
        os.environ["DEMOZONE_SECRET_KEY"] = demo_secret_key()
    # A request that issues a 公文 returns at once; the worker's renderer thread typesets the PDF.
    os.environ.setdefault("DEMOZONE_DOCUMENT_RENDERING", "background")
    from web import create_app

    create_app().extensions["demozone.engine"].db.dispose()  # fail fast on bad settings, before forking
    click.echo(f"demozone: serving on http://{host}:{port}/ "
               f"(gunicorn {worker_class(threads)}, {workers} worker(s) x {threads} thread(s))")
    if timers:
        click.echo(f"demozone: timer worker every {timer_interval:g} s (demozone worker)")
    sys.stdout.flush()
    _Gunicorn.run(
        {
            "bind": f"{host}:{port}",
            "workers": workers,
            "threads": threads,
            "worker_class": worker_class(threads),
            # Off unless asked for: a gthread worker writes the line before it takes the connection's next
            # request, which cost 0.8 ms of a 1.4 ms request (bench/README.md).
            **({"accesslog": "-"} if access_log else {}),
            "errorlog": "-",
            "timeout": 60,
            "graceful_timeout": 10,
            "limit_request_line": 8190,
            "control_socket_disable": True,
            **(_timer_hooks(timer_interval) if timers else {}),
        }
    )
