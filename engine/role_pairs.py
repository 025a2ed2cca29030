"""SQL that matches rows to an actor's (role, org) pairs: whose 待办 a task is in, who holds a lane.

The pairs are written out as ``(role = :role_0 AND org = :org_0) OR (role = :role_1 AND ...)``, one
statement per number of pairs (build it with ``lru_cache`` on the count), rather than as one expanding
``(role, org) IN (...)``:

- SQLite plans a row-value IN of two pairs or more as a scan of the whole (role, org) index, so an
  official holding two roles paid for every open task in the province; the OR of pairs is one index
  search per pair, on SQLite and PostgreSQL alike;
- SQLAlchemy renders an expanding parameter's SQL again on every execution, which cost more than the
  query itself on a 待办 page.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, bindparam, or_
from sqlalchemy.sql.elements import ColumnElement


def matches_pairs(role: ColumnElement[Any], org: ColumnElement[Any], count: int) -> ColumnElement[bool]:
    """``role`` and ``org`` equal to one of ``count`` bound pairs (bind them with ``pair_values``)."""
    if count < 1:
        raise ValueError("a statement for no pairs would match nothing: check for an empty list first")
    return or_(*(and_(role == bindparam(f"role_{i}"), org == bindparam(f"org_{i}")) for i in range(count)))


def pair_values(pairs: Sequence[tuple[str, str]]) -> dict[str, str]:
    """The parameters of ``matches_pairs(..., len(pairs))`` for these pairs."""
    values: dict[str, str] = {}
    for i, (role, org) in enumerate(pairs):
        values[f"role_{i}"] = role
        values[f"org_{i}"] = org
    return values
