"""Database engine and session factory.

SQLite is the default (a file, WAL mode, foreign keys on, a busy timeout so concurrent writers wait
instead of failing); PostgreSQL is selected by a ``postgresql+psycopg://`` URL. Callers own the
transaction: engine functions take a ``Session`` and never commit.

SQLite writers (threads and processes alike) queue on an OS file lock beside the database, taken
before ``BEGIN IMMEDIATE`` and released right after commit or rollback: SQLite's own busy handler
sleeps in growing steps (up to 100 ms) and polls, so under load a waiter would sleep long after the
lock was free; a waiter on ``flock`` is woken the moment it is released.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from sqlalchemy import MetaData, create_engine, event
from sqlalchemy.engine import Engine as DbEngine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SQLITE_BUSY_TIMEOUT_MS = 30_000
WRITE_OPTION = "demozone_write"  # on a write transaction's connection: see is_writing()

# Set while begin_write() opens a transaction, for the SQLite dialect's do_begin to read.
_BEGINNING_WRITE: ContextVar[bool] = ContextVar("demozone_beginning_write", default=False)


_LOCK_FD = "demozone_write_lock_fd"
_HOLDERS: dict[str, set[int]] = {}


class _WriterLock:
    """An exclusive ``flock`` on one lock file, held by a connection from BEGIN to COMMIT/ROLLBACK.

    Every acquisition opens its own descriptor: ``flock`` locks belong to the open file, so two
    threads of one process exclude each other as two processes do. A thread that already holds the
    lock (a write nested in another write on a second connection) does not take it again: it would
    wait for itself for ever, where SQLite's busy timeout at least ends with an error.
    """

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        # Shared by every engine on this file, so a nested write through a second engine is seen too.
        self._holders = _HOLDERS.setdefault(self.path, set())

    def acquire(self, info: dict) -> None:
        thread = threading.get_ident()
        if thread in self._holders:
            info[_LOCK_FD] = (None, thread)
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        self._holders.add(thread)
        info[_LOCK_FD] = (fd, thread)

    def release(self, info: dict) -> None:
        fd, thread = info.pop(_LOCK_FD, (None, None))
        if fd is not None:
            self._holders.discard(thread)
            # Closing the descriptor drops the lock.
            os.close(fd)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def make_db_engine(url: str, **kwargs: object) -> DbEngine:
    """Create the SQLAlchemy engine, with the SQLite pragmas and transaction hooks set up."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, **kwargs)

    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **kwargs)
    lock = None
    if parsed.database and parsed.database != ":memory:" and not parsed.database.startswith("file:"):
        lock = _WriterLock(f"{parsed.database}.writelock")

    @event.listens_for(engine, "connect")
    def _configure_sqlite(dbapi_connection, _record):  # noqa: ANN001
        # The sqlite3 module's own transaction handling never emits BEGIN before SELECTs and breaks
        # SAVEPOINTs; we take control and emit BEGIN ourselves (``do_begin`` below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    def do_begin(pooled) -> None:  # noqa: ANN001
        # A write transaction takes the lock up front (IMMEDIATE), so two writers queue on the busy
        # timeout instead of both reading and then one failing with "database is locked" on upgrade.
        # Reads stay deferred and never wait for writers (WAL).
        if not _BEGINNING_WRITE.get():
            _emit_begin(pooled, "BEGIN")
        elif lock is None:
            _emit_begin(pooled, "BEGIN IMMEDIATE")
        else:
            lock.acquire(pooled.info)
            try:
                _emit_begin(pooled, "BEGIN IMMEDIATE")
            except BaseException:
                lock.release(pooled.info)
                raise

    # The dialect's own hook, not a "begin" connection event: once any connection event is listened for,
    # SQLAlchemy dispatches its events around every statement (a twelfth of an API completion's calls).
    engine.dialect.do_begin = do_begin  # type: ignore[method-assign]
    if lock is not None:
        _release_after(engine, lock)
    return engine


def _emit_begin(pooled, statement: str) -> None:  # noqa: ANN001
    """Send BEGIN straight to the driver: through SQLAlchemy's statement execution (events, execution
    context, result) it cost as much as a query, a third of an empty transaction, on every session."""
    try:
        pooled.dbapi_connection.execute(statement)
    except sqlite3.Error as exc:
        raise DBAPIError.instance(statement, (), exc, sqlite3.Error) from exc


def _release_after(engine: DbEngine, lock: _WriterLock) -> None:
    """Release the writer lock once the transaction has ended in SQLite, not before.

    SQLAlchemy's ``commit``/``rollback`` events fire before the DBAPI call, so the dialect's own
    calls are wrapped; a connection closed or invalidated while holding the lock releases it too.
    """
    dialect = engine.dialect
    do_commit, do_rollback = dialect.do_commit, dialect.do_rollback

    def commit_then_release(connection) -> None:  # noqa: ANN001
        try:
            do_commit(connection)
        finally:
            _release_on(connection)

    def rollback_then_release(connection) -> None:  # noqa: ANN001
        try:
            do_rollback(connection)
        finally:
            _release_on(connection)

    def _release_on(connection) -> None:  # noqa: ANN001
        # The dialect's first-connect check passes a bare pool record, which has no info (and never
        # holds the lock).
        try:
            info = connection.info
        except (AttributeError, NotImplementedError):
            return
        lock.release(info)

    dialect.do_commit = commit_then_release  # type: ignore[method-assign]
    dialect.do_rollback = rollback_then_release  # type: ignore[method-assign]

    @event.listens_for(engine, "close")
    def _on_close(_dbapi_connection, record) -> None:  # noqa: ANN001
        lock.release(record.info)

    @event.listens_for(engine, "invalidate")
    def _on_invalidate(_dbapi_connection, record, _exception) -> None:  # noqa: ANN001
        lock.release(record.info)


def make_session_factory(db_engine: DbEngine) -> sessionmaker:
    return sessionmaker(bind=db_engine, expire_on_commit=False, autoflush=False)


def begin_write(session: Session) -> None:
    """Begin ``session``'s transaction as a write (SQLite: ``BEGIN IMMEDIATE``, under the writer's lock)."""
    beginning = _BEGINNING_WRITE.set(True)
    try:
        session.connection(execution_options={WRITE_OPTION: True})
    finally:
        _BEGINNING_WRITE.reset(beginning)


def is_writing(session: Session) -> bool:
    """Whether ``session``'s transaction was begun by ``begin_write``."""
    return bool(session.connection().get_execution_options().get(WRITE_OPTION))


@contextmanager
def write_session(session_factory: sessionmaker) -> Iterator[Session]:
    """One write transaction: commits on success, rolls back on any exception, then closes."""
    with session_factory() as session:
        begin_write(session)
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


@contextmanager
def read_session(session_factory: sessionmaker) -> Iterator[Session]:
    """A read-only unit of work. Closing rolls the transaction back but keeps what was loaded readable."""
    with session_factory() as session:
        yield session
