"""Alembic environment: the URL comes from demozone's settings (or the caller), never from an ini file."""

from alembic import context
from sqlalchemy import pool

from engine import models  # noqa: F401  (registers the tables on Base.metadata)
from engine.db import Base, make_db_engine
from engine.settings import Settings

config = context.config
url = config.get_main_option("sqlalchemy.url") or Settings.from_env().database_url


def run_migrations_offline() -> None:
    context.configure(url=url, target_metadata=Base.metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    db_engine = make_db_engine(url, poolclass=pool.NullPool)
    with db_engine.connect() as connection:
        _run(connection)
    db_engine.dispose()


def _run(connection) -> None:  # noqa: ANN001
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
