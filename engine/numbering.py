"""Document numbers (文号): one gapless series per prefix and year, e.g. 辽科协发〔2026〕12号."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from engine.models import DocumentCounter


def _take_number_statements() -> dict[str, Any]:
    """Per dialect: count the year's counter up by one, creating it at 1, and return the number taken."""
    statements = {}
    for dialect, insert in (("postgresql", postgresql_insert), ("sqlite", sqlite_insert)):
        counter = insert(DocumentCounter.__table__).values(
            prefix=bindparam("prefix"), year=bindparam("year"), last_number=1
        )
        statements[dialect] = counter.on_conflict_do_update(
            index_elements=["prefix", "year"],
            set_={"last_number": DocumentCounter.__table__.c.last_number + 1},
        ).returning(DocumentCounter.__table__.c.last_number)
    return statements


_TAKE_NUMBER = _take_number_statements()


def next_document_number(session: Session, prefix: str, year: int) -> int:
    """The next number for ``prefix`` in ``year``: no gaps, no duplicates.

    One statement: the upsert locks the year's counter row (PostgreSQL) or runs under the writer lock
    (SQLite), so two numbers taken at once queue instead of one failing on the primary key.
    """
    statement = _TAKE_NUMBER[session.get_bind().dialect.name]
    return session.connection().execute(statement, {"prefix": prefix, "year": year}).scalar_one()
