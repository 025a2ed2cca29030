"""SQLite writers queue on the OS file lock beside the database (engine.db), across threads and processes."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import sqlite3
import threading
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError

from engine.db import make_db_engine, make_session_factory, read_session, write_session

WRITERS = 4
INCREMENTS = 40


def _factory(path: Path):  # noqa: ANN202
    return make_session_factory(make_db_engine(f"sqlite:///{path}"))


def _increment(path: str, count: int) -> None:
    sessions = _factory(Path(path))
    for _ in range(count):
        with write_session(sessions) as session:
            value = session.execute(text("SELECT value FROM counter")).scalar_one()
            session.execute(text("UPDATE counter SET value = :v"), {"v": value + 1})


@pytest.fixture()
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "lock.db"
    with write_session(_factory(path)) as session:
        session.execute(text("CREATE TABLE counter (value INTEGER NOT NULL)"))
        session.execute(text("INSERT INTO counter VALUES (0)"))
    return path


def _value(path: Path) -> int:
    with read_session(_factory(path)) as session:
        return session.execute(text("SELECT value FROM counter")).scalar_one()


def test_writers_in_several_processes_and_threads_all_succeed_and_lose_nothing(db_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_increment, args=(str(db_path), INCREMENTS)) for _ in range(WRITERS)]
    threads = [threading.Thread(target=_increment, args=(str(db_path), INCREMENTS)) for _ in range(WRITERS)]
    for worker in [*processes, *threads]:
        worker.start()
    for worker in [*processes, *threads]:
        worker.join(timeout=120)
    assert [p.exitcode for p in processes] == [0] * WRITERS
    assert _value(db_path) == 2 * WRITERS * INCREMENTS


def _lock_file(db_path: Path) -> Path:
    return Path(f"{db_path}.writelock")


def test_a_writer_waits_for_the_file_lock_and_readers_do_not(db_path: Path) -> None:
    sessions = _factory(db_path)
    fd = os.open(_lock_file(db_path), os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    began = threading.Event()
    done = threading.Event()

    def write() -> None:
        began.set()
        with write_session(sessions) as session:
            session.execute(text("UPDATE counter SET value = 7"))
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    began.wait()
    assert not done.wait(0.3)
    assert _value(db_path) == 0  # a reader goes through while the writer waits
    os.close(fd)  # releases the lock
    writer.join(timeout=30)
    assert done.is_set() and _value(db_path) == 7


def _lock_is_free(db_path: Path) -> bool:
    fd = os.open(_lock_file(db_path), os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def test_the_lock_is_held_during_a_write_and_released_after_commit_or_rollback(db_path: Path) -> None:
    sessions = _factory(db_path)
    with write_session(sessions) as session:
        session.execute(text("UPDATE counter SET value = 1"))
        assert not _lock_is_free(db_path)
    assert _lock_is_free(db_path)

    with pytest.raises(RuntimeError), write_session(sessions) as session:
        session.execute(text("UPDATE counter SET value = 2"))
        raise RuntimeError("abandon")
    assert _lock_is_free(db_path)
    assert _value(db_path) == 1

    with read_session(sessions) as session:
        session.execute(text("SELECT value FROM counter"))
        assert _lock_is_free(db_path)


def test_a_write_nested_in_a_write_of_the_same_thread_does_not_wait_for_itself(db_path: Path) -> None:
    impatient = make_db_engine(f"sqlite:///{db_path}")

    @event.listens_for(impatient, "connect")
    def _short_busy_timeout(dbapi_connection, _record) -> None:  # noqa: ANN001
        dbapi_connection.execute("PRAGMA busy_timeout=50")

    with write_session(_factory(db_path)) as session:
        session.execute(text("UPDATE counter SET value = 1"))
        # SQLite refuses the second writer, as it did before the file lock; it does not hang.
        with pytest.raises(OperationalError, match="locked"), write_session(make_session_factory(impatient)):
            pass
    assert _lock_is_free(db_path)
    assert _value(db_path) == 1


def test_a_read_begins_deferred_and_a_write_immediate_with_no_connection_events(db_path: Path) -> None:
    engine = make_db_engine(f"sqlite:///{db_path}")
    sessions = make_session_factory(engine)
    with read_session(sessions) as reading:
        reading.execute(text("SELECT value FROM counter"))
        # A deferred transaction holds no write lock: a writer elsewhere goes ahead.
        with write_session(sessions) as writing:
            writing.execute(text("UPDATE counter SET value = 7"))
    with write_session(sessions) as writing:
        writing.connection()
        with pytest.raises(sqlite3.OperationalError, match="locked"), _impatient_connection(db_path) as other:
            other.execute("BEGIN IMMEDIATE")  # the write transaction holds SQLite's write lock from its start
    # BEGIN comes from the dialect, not a "begin" event: with any connection event listened for,
    # SQLAlchemy would dispatch events around every statement.
    assert not engine._has_events


def _impatient_connection(path: Path) -> closing[sqlite3.Connection]:
    return closing(sqlite3.connect(path, timeout=0.05, isolation_level=None))
