"""Throwaway PostgreSQL 15 clusters for tests.

Tests that exercise the PostgreSQL code paths need a real server, but must not
depend on (or disturb) any cluster that happens to be installed on the machine.
This module builds a private cluster in a temp directory, listening only on
127.0.0.1 on a free port, tuned for speed rather than durability, and removes
it again afterwards.

CI runs as root, and ``initdb`` refuses to run as root, so in that case every
server binary is run as the ``postgres`` system user through ``runuser``.

Typical use::

    reason = postgres_available()
    if reason is not None:
        pytest.fail(reason) if require_postgres() else pytest.skip(reason)
    with PgCluster() as pg:
        engine = create_engine(pg.url)

Importing this module has no side effects: nothing runs until ``__enter__``.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import weakref
from pathlib import Path
from types import TracebackType

import psycopg
from psycopg import sql

PG_BIN = Path("/usr/lib/postgresql/15/bin")
"""Where Debian's postgresql-15 package puts the server binaries."""

SUPERUSER = "postgres"
DEFAULT_DATABASE = "demozone_test"
HOST = "127.0.0.1"

# Settings appended to postgresql.conf. Durability is traded for speed: a test
# cluster is thrown away, so fsync and full-page writes only cost time.
_SETTINGS: dict[str, str] = {
    "listen_addresses": f"'{HOST}'",
    "max_connections": "200",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "logging_collector": "off",
}

_STARTUP_TIMEOUT = 60.0
_LOG_TAIL_LINES = 30


class PgClusterError(RuntimeError):
    """A cluster could not be created, started or stopped."""


def require_postgres() -> bool:
    """True when tests must fail, not skip, if PostgreSQL is unavailable.

    CI sets DEMOZONE_REQUIRE_POSTGRES=1 so a broken install cannot turn the
    whole PostgreSQL suite into silent skips.
    """
    return os.environ.get("DEMOZONE_REQUIRE_POSTGRES") == "1"


def postgres_available() -> str | None:
    """Return None if a cluster can be started here, else a short reason why not.

    Only cheap checks are done (binaries present, a user to run them as); a
    cluster that still fails to start raises PgClusterError from ``__enter__``.
    """
    for name in ("initdb", "pg_ctl", "postgres"):
        if not os.access(PG_BIN / name, os.X_OK):
            return f"{PG_BIN / name} not found (install postgresql-15)"
    if _running_as_root():
        try:
            pwd.getpwnam(SUPERUSER)
        except KeyError:
            return f"running as root but there is no {SUPERUSER!r} system user to run initdb as"
        if shutil.which("runuser") is None:
            return "running as root but runuser is not installed"
    return None


def free_port(host: str = HOST) -> int:
    """Ask the kernel for a currently unused TCP port on ``host``.

    There is a small race (another process may take the port before the
    server binds it); a clash shows up as a clear start-up error.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _running_as_root() -> bool:
    return os.geteuid() == 0


def _server_env() -> dict[str, str]:
    """The caller's environment minus PG* variables, which would override our settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


def _run(args: list[str], *, as_postgres: bool, cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run a server binary, as the postgres user when we are root.

    ``cwd`` is the cluster's base dir because the postgres user may not be
    allowed into the caller's working directory.
    """
    if as_postgres:
        args = ["runuser", "-u", SUPERUSER, "--", *args]
    return subprocess.run(
        args,
        cwd=cwd,
        env=_server_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _teardown(base_dir: Path, data_dir: Path, as_postgres: bool) -> None:
    """Stop the server (if any) and delete everything; safe to call more than once.

    A module-level function rather than a method so that weakref.finalize can
    hold it without keeping the PgCluster alive.
    """
    if (data_dir / "postmaster.pid").exists():
        _run(
            [str(PG_BIN / "pg_ctl"), "stop", "-D", str(data_dir), "-m", "immediate", "-w", "-t", "30"],
            as_postgres=as_postgres,
            cwd=base_dir,
            timeout=60,
        )
    shutil.rmtree(base_dir, ignore_errors=True)


class PgCluster:
    """A private PostgreSQL 15 cluster that lives as long as the ``with`` block.

    ``__enter__`` runs initdb, starts the server and creates the database
    ``demozone_test``; ``__exit__`` (or ``stop()``) shuts it down immediately
    and deletes its directory. ``kill()`` and ``start()`` stop and restart the
    server on the same port while keeping the data, for fault-injection tests.

    Note that synchronous_commit is off: commits made in the last fraction of
    a second before ``kill()`` may be lost, as after a real crash. A test that
    needs a commit to survive ``kill()`` can ``SET synchronous_commit = on``.
    """

    def __init__(self, *, port: int | None = None, startup_timeout: float = _STARTUP_TIMEOUT) -> None:
        """``port`` defaults to a free port; ``startup_timeout`` bounds each start, in seconds."""
        self._requested_port = port
        self._startup_timeout = startup_timeout
        self._as_postgres = _running_as_root()
        self._port: int | None = None
        self._base_dir: Path | None = None
        self._finalizer: weakref.finalize | None = None

    # -- lifecycle ---------------------------------------------------------

    def __enter__(self) -> PgCluster:
        reason = postgres_available()
        if reason is not None:
            raise PgClusterError(reason)
        if self._base_dir is not None:
            raise PgClusterError("this PgCluster has already been entered")
        self._port = self._requested_port or free_port()
        self._base_dir = self._make_base_dir()
        # Safety net: stop the server even if the test process never calls stop().
        self._finalizer = weakref.finalize(self, _teardown, self._base_dir, self.data_dir, self._as_postgres)
        try:
            self._initdb()
            self.start()
            self._create_database_sql(DEFAULT_DATABASE)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop the server (``pg_ctl stop -m immediate``) and delete the temp dir. Idempotent."""
        if self._finalizer is not None:
            self._finalizer()

    def kill(self) -> None:
        """Stop the server abruptly (immediate mode, i.e. crash-like) but keep its data."""
        self._pg_ctl("stop", "-m", "immediate", "-w", "-t", "30")

    def start(self) -> None:
        """Start the server on this cluster's port and wait until it accepts connections."""
        log = self.base_dir / "server.log"
        timeout = str(max(1, round(self._startup_timeout)))
        result = self._pg_ctl("start", "-w", "-t", timeout, "-l", str(log), check=False)
        if result.returncode != 0:
            raise PgClusterError(
                f"PostgreSQL failed to start on {HOST}:{self.port} "
                f"(pg_ctl exit {result.returncode}, timeout {timeout}s).\n"
                f"pg_ctl output:\n{(result.stdout + result.stderr).strip()}\n"
                f"server log tail:\n{self.log_tail()}"
            )

    # -- public info -------------------------------------------------------

    @property
    def port(self) -> int:
        """TCP port the server listens on (127.0.0.1 only)."""
        if self._port is None:
            raise PgClusterError("cluster not started: use it as a context manager")
        return self._port

    @property
    def base_dir(self) -> Path:
        """Temp dir holding the data dir, the unix socket and server.log; removed by stop()."""
        if self._base_dir is None:
            raise PgClusterError("cluster not started: use it as a context manager")
        return self._base_dir

    @property
    def data_dir(self) -> Path:
        """The PGDATA directory, inside ``base_dir``."""
        return self.base_dir / "data"

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the ``demozone_test`` database."""
        return self.url_for(DEFAULT_DATABASE)

    def url_for(self, database: str) -> str:
        """SQLAlchemy URL (psycopg 3 driver) of ``database`` on this cluster."""
        return f"postgresql+psycopg://{SUPERUSER}@{HOST}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create another database on this cluster and return its SQLAlchemy URL."""
        self._create_database_sql(name)
        return self.url_for(name)

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """Last ``lines`` lines of the server log, for error messages."""
        try:
            text = (self.base_dir / "server.log").read_text(errors="replace")
        except OSError as exc:
            return f"(no server log: {exc})"
        return "\n".join(text.splitlines()[-lines:])

    # -- internals ---------------------------------------------------------

    def _make_base_dir(self) -> Path:
        """Create the cluster's temp dir, owned by whoever runs the server.

        As root, the dir goes straight under /tmp (world-traversable) rather
        than $TMPDIR, which might sit below a directory postgres cannot enter.
        """
        parent = "/tmp" if self._as_postgres else None
        base = Path(tempfile.mkdtemp(prefix="demozone-pg-", dir=parent))
        if self._as_postgres:
            pw = pwd.getpwnam(SUPERUSER)
            os.chown(base, pw.pw_uid, pw.pw_gid)
        return base

    def _initdb(self) -> None:
        args = [
            str(PG_BIN / "initdb"),
            "--pgdata", str(self.data_dir),
            "--username", SUPERUSER,
            "--auth", "trust",
            "--encoding", "UTF8",
            "--locale", "C",
            "--no-sync",
            "--no-instructions",
        ]  # fmt: skip
        result = _run(args, as_postgres=self._as_postgres, cwd=self.base_dir, timeout=120)
        if result.returncode != 0:
            raise PgClusterError(f"initdb failed (exit {result.returncode}):\n{result.stdout}{result.stderr}")
        settings = {**_SETTINGS, "port": str(self.port), "unix_socket_directories": f"'{self.base_dir}'"}
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("\n# added by tests/support/pgcluster.py\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())

    def _pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(PG_BIN / "pg_ctl"), *args[:1], "-D", str(self.data_dir), *args[1:]]
        result = _run(cmd, as_postgres=self._as_postgres, cwd=self.base_dir, timeout=self._startup_timeout + 30)
        if check and result.returncode != 0:
            raise PgClusterError(f"pg_ctl {args[0]} failed (exit {result.returncode}):\n{result.stdout}{result.stderr}")
        return result

    def _create_database_sql(self, name: str) -> None:
        # CREATE DATABASE cannot run inside a transaction, hence autocommit.
        with psycopg.connect(host=HOST, port=self.port, user=SUPERUSER, dbname="postgres", autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
