"""Fixtures of the operations tests: prepared databases holding ``mini`` cases, copied for each test.

The template (built once per session and backend) holds the Liaoning demo data, the real processes,
``tests/definitions/mini.bpmn``, 32 cases waiting at step ``a`` and 40 at step ``b`` (whose 10-day
timers fall due on 2026-03-12), one approved case, and API tokens for 沈阳市科协, 新民市委 and the auditor.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.ops.opskit import Populated, populate
from tests.support.pgcluster import HOST, SUPERUSER, PgCluster

CASES_AT_A = 32
CASES_AT_B = 40
OPS_PG_TEMPLATE = "demozone_ops_template"


@dataclass
class OpsDatabase:
    """One test's database: its URL, what the template holds, and the cluster when it is PostgreSQL."""

    url: str
    backend: str
    populated: Populated
    cluster: PgCluster | None = None


def admin_execute(cluster: PgCluster, statement: sql.Composable) -> None:
    """One statement on a new autocommit connection (robust to a cluster that was restarted)."""
    with psycopg.connect(host=HOST, port=cluster.port, user=SUPERUSER, dbname="postgres", autocommit=True) as conn:
        conn.execute(statement)


@contextmanager
def pg_copy(cluster: PgCluster, template: str) -> Iterator[str]:
    """A new database copied from ``template``, durable across ``PgCluster.kill()``: commits wait for
    their WAL (synchronous_commit on) and sequences are checkpointed. Dropped afterwards."""
    name = f"ops_{uuid.uuid4().hex[:12]}"
    admin_execute(
        cluster, sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template))
    )
    admin_execute(cluster, sql.SQL("ALTER DATABASE {} SET synchronous_commit = on").format(sql.Identifier(name)))
    # The copy's sequence pages carry the template's "already WAL-logged" allowance; until a checkpoint
    # forces nextval() to log again, a crash would rewind history_event's id sequence (duplicate ids).
    admin_execute(cluster, sql.SQL("CHECKPOINT"))
    try:
        yield cluster.url_for(name)
    finally:
        admin_execute(cluster, sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def ops_sqlite_template(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Populated]:
    """The prepared SQLite file described above."""
    path = tmp_path_factory.mktemp("ops") / "ops.db"
    shutil.copyfile(sqlite_template, path)
    return path, populate(f"sqlite:///{path}", CASES_AT_A, CASES_AT_B)


@pytest.fixture(scope="session")
def ops_pg_template(pg_cluster: PgCluster, pg_template: str) -> tuple[str, Populated]:
    """The prepared PostgreSQL database described above (a template for each test's copy)."""
    admin_execute(
        pg_cluster,
        sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(OPS_PG_TEMPLATE), sql.Identifier(pg_template)),
    )
    return OPS_PG_TEMPLATE, populate(pg_cluster.url_for(OPS_PG_TEMPLATE), CASES_AT_A, CASES_AT_B)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.pg)])
def ops_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OpsDatabase]:
    """A fresh copy of the template, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        source, populated = request.getfixturevalue("ops_sqlite_template")
        shutil.copyfile(source, tmp_path / "ops.db")
        yield OpsDatabase(f"sqlite:///{tmp_path / 'ops.db'}", "sqlite", populated)
        return
    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    template, populated = request.getfixturevalue("ops_pg_template")
    with pg_copy(cluster, template) as url:
        yield OpsDatabase(url, "postgresql", populated, cluster)


@pytest.fixture
def ops_pg_db(pg_cluster: PgCluster, ops_pg_template: tuple[str, Populated]) -> Iterator[OpsDatabase]:
    """A fresh copy of the template on PostgreSQL only."""
    template, populated = ops_pg_template
    with pg_copy(pg_cluster, template) as url:
        yield OpsDatabase(url, "postgresql", populated, pg_cluster)
