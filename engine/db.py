"""Database engine and session factory.

SQLite is the default (a file, WAL mode, foreign keys on, a busy timeout so concurrent writers wait
instead of failing); PostgreSQL is selected by a ``postgresql+psycopg://`` URL. Callers own the
transaction: engine functions take a ``Session`` and never commit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import MetaData, create_engine, event
from sqlalchemy.engine import Engine as DbEngine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SQLITE_BUSY_TIMEOUT_MS = 30_000
WRITE_OPTION = "demozone_write"


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

    @event.listens_for(engine, "connect")
    def _configure_sqlite(dbapi_connection, _record):  # noqa: ANN001
        # The sqlite3 module's own transaction handling never emits BEGIN before SELECTs and breaks
        # SAVEPOINTs; we take control and emit BEGIN ourselves (see the "begin" hook below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection):  # noqa: ANN001
        # A write transaction takes the lock up front (IMMEDIATE), so two writers queue on the busy
        # timeout instead of both reading and then one failing with "database is locked" on upgrade.
        # Reads stay deferred and never wait for writers (WAL).
        immediate = connection.get_execution_options().get(WRITE_OPTION)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def make_session_factory(db_engine: DbEngine) -> sessionmaker:
    return sessionmaker(bind=db_engine, expire_on_commit=False, autoflush=False)


@contextmanager
def write_session(session_factory: sessionmaker) -> Iterator[Session]:
    """One write transaction: commits on success, rolls back on any exception, then closes."""
    with session_factory() as session:
        session.connection(execution_options={WRITE_OPTION: True})
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
