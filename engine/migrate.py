"""Run Alembic migrations from code (``demozone init`` / ``demozone db upgrade``)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine as DbEngine

from engine.settings import PROJECT_ROOT


def alembic_config(url: str | None = None) -> Config:
    config = Config(toml_file=str(PROJECT_ROOT / "pyproject.toml"))
    if url:
        config.set_main_option("sqlalchemy.url", url)
    return config


def upgrade_database(db_engine: DbEngine) -> None:
    """Bring the schema to the newest revision, on the caller's engine."""
    config = alembic_config(db_engine.url.render_as_string(hide_password=False))
    with db_engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
