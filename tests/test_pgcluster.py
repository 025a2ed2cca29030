"""Tests for the throwaway PostgreSQL cluster helper (tests/support/pgcluster.py)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tests.support.pgcluster import PgCluster, PgClusterError, postgres_available, require_postgres


def _need_postgres() -> None:
    """Skip when no cluster can be started here, or fail if CI requires PostgreSQL."""
    reason = postgres_available()
    if reason is None:
        return
    if require_postgres():
        pytest.fail(f"DEMOZONE_REQUIRE_POSTGRES=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def cluster() -> Iterator[PgCluster]:
    _need_postgres()
    with PgCluster() as pg:
        yield pg


@pytest.fixture
def engine(cluster: PgCluster) -> Iterator[Engine]:
    eng = sa.create_engine(cluster.url)
    try:
        yield eng
    finally:
        eng.dispose()  # unclosed connections would be ResourceWarnings, i.e. errors here


def test_select_one_and_table_roundtrip(engine: Engine) -> None:
    with engine.begin() as conn:
        assert conn.execute(sa.text("select 1")).scalar_one() == 1
        conn.execute(sa.text("create table probe (id int primary key, name text not null)"))
        conn.execute(sa.text("insert into probe values (1, '示范区')"))
    with engine.connect() as conn:
        assert conn.execute(sa.text("select name from probe where id = 1")).scalar_one() == "示范区"


def test_server_settings(cluster: PgCluster, engine: Engine) -> None:
    names = [
        "listen_addresses", "port", "unix_socket_directories", "fsync", "synchronous_commit",
        "full_page_writes", "max_connections", "server_encoding", "server_version",
    ]  # fmt: skip
    with engine.connect() as conn:
        got = {name: conn.execute(sa.text(f"show {name}")).scalar_one() for name in names}
    assert got["listen_addresses"] == "127.0.0.1"  # loopback only, never a public interface
    assert got["port"] == str(cluster.port)
    assert got["unix_socket_directories"] == str(cluster.base_dir)
    assert got["fsync"] == got["synchronous_commit"] == got["full_page_writes"] == "off"
    assert int(got["max_connections"]) >= 100
    assert got["server_encoding"] == "UTF8"
    assert got["server_version"].startswith("15.")
    assert cluster.url == f"postgresql+psycopg://postgres@127.0.0.1:{cluster.port}/demozone_test"


def test_create_database(cluster: PgCluster) -> None:
    url = cluster.create_database("demozone_extra")
    assert url.endswith(f":{cluster.port}/demozone_extra")
    eng = sa.create_engine(url)
    try:
        with eng.connect() as conn:
            assert conn.execute(sa.text("select current_database()")).scalar_one() == "demozone_extra"
    finally:
        eng.dispose()


def test_kill_and_start_keep_data(cluster: PgCluster, engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("create table survivor (v int)"))
        # synchronous_commit is off cluster-wide; make this commit durable across a crash.
        conn.execute(sa.text("set local synchronous_commit = on"))
        conn.execute(sa.text("insert into survivor values (42)"))
    engine.dispose()

    cluster.kill()
    assert cluster.data_dir.is_dir()
    with pytest.raises(sa.exc.OperationalError), engine.connect():
        pass

    cluster.start()
    engine.dispose()  # drop any pooled connections to the old server process
    with engine.connect() as conn:
        assert conn.execute(sa.text("select v from survivor")).scalar_one() == 42


def test_stop_removes_data_dir() -> None:
    _need_postgres()
    pg = PgCluster()
    with pg:
        data_dir = pg.data_dir
        assert (data_dir / "PG_VERSION").read_text().strip() == "15"
    assert not data_dir.exists()
    assert not pg.base_dir.exists()
    pg.stop()  # idempotent


def test_start_failure_reports_log_tail() -> None:
    _need_postgres()
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        pg = PgCluster(port=port, startup_timeout=20)
        with pytest.raises(PgClusterError) as info:
            pg.__enter__()
    message = str(info.value)
    assert f"127.0.0.1:{port}" in message
    assert "server log tail" in message
    assert "could not" in message  # e.g. "could not bind IPv4 address ... Address already in use"
    assert not pg.base_dir.exists()
