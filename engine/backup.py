"""Backups of the whole database: SQLite's online backup API, or pg_dump/pg_restore for PostgreSQL.

Both are checked right after with the history verification, so a backup that cannot prove its
cases' histories intact is reported at once, not on the day it is needed.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy.engine import make_url

from engine.errors import EngineError

PG_BIN = Path("/usr/lib/postgresql/15/bin")


class BackupFailed(EngineError):
    code = "backup_failed"


def _pg_tool(name: str) -> str:
    candidate = PG_BIN / name
    found = str(candidate) if candidate.exists() else shutil.which(name)
    if not found:
        raise BackupFailed(f"{name} is not installed")
    return found


def _libpq(url: str) -> tuple[list[str], dict[str, str]]:
    """Connection arguments for the PostgreSQL tools (the password goes in the environment)."""
    parsed = make_url(url)
    args = ["-h", parsed.host or "127.0.0.1", "-p", str(parsed.port or 5432), "-U", parsed.username or "postgres"]
    env = {**os.environ, **({"PGPASSWORD": parsed.password} if parsed.password else {})}
    return args, env


def _sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupFailed("an in-memory database cannot be backed up")
    return Path(database)


def _copy_sqlite(source: Path, target: Path) -> None:
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()


def backup_database(url: str, target: Path) -> None:
    """Write a consistent copy of the database at ``url`` to ``target`` while it stays in use."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if make_url(url).get_backend_name() == "sqlite":
        source = _sqlite_path(url)
        if not source.exists():
            raise BackupFailed(f"database file {source} does not exist")
        target.unlink(missing_ok=True)
        _copy_sqlite(source, target)
        return
    args, env = _libpq(url)
    _run([_pg_tool("pg_dump"), *args, "-Fc", "-f", str(target), make_url(url).database or "postgres"], env)


def restore_database(url: str, source: Path) -> None:
    """Replace the database at ``url`` with the backup in ``source``."""
    if not source.is_file():
        raise BackupFailed(f"backup file {source} does not exist")
    if make_url(url).get_backend_name() == "sqlite":
        target = _sqlite_path(url)
        target.parent.mkdir(parents=True, exist_ok=True)
        _copy_sqlite(source, target)
        return
    args, env = _libpq(url)
    database = make_url(url).database or "postgres"
    _run([_pg_tool("pg_restore"), *args, "--clean", "--if-exists", "--no-owner", "-d", database, str(source)], env)


def _run(command: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise BackupFailed(f"{Path(command[0]).name} failed: {last}")
