"""SQL conditions over lists bound per execution: ``column IN`` a list, and an actor's (role, org) pairs.

Each list is written out with one parameter per value, in a statement built once per length of the
list (build it with ``lru_cache`` on the length), rather than as one expanding ``IN`` parameter:

- SQLAlchemy renders an expanding parameter's SQL again on every execution, which cost more than the
  query itself on a 待办 page;
- SQLite plans a row-value ``(role, org) IN (VALUES ...)`` of two pairs or more as a scan of the whole
  (role, org) index, so an official holding two roles paid for every open task in the province. The
  pairs are matched as ``(role = :role_0 AND org = :org_0) OR ...`` instead: one index search per pair,
  on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import and_, bindparam, or_
from sqlalchemy.sql.elements import ColumnElement


def in_list(column: ColumnElement[Any], count: int, name: str) -> ColumnElement[bool]:
    """``column`` equal to one of ``count`` values bound as ``name_0``, ``name_1``, ... (see ``list_values``)."""
    _check_count(count)
    return column.in_([bindparam(f"{name}_{i}", type_=column.type) for i in range(count)])


def list_values(name: str, values: Iterable[Any]) -> dict[str, Any]:
    """The parameters of ``in_list(column, len(values), name)`` for these values."""
    return {f"{name}_{i}": value for i, value in enumerate(values)}


def matches_pairs(role: ColumnElement[Any], org: ColumnElement[Any], count: int) -> ColumnElement[bool]:
    """``role`` and ``org`` equal to one of ``count`` bound pairs (see ``pair_values``)."""
    _check_count(count)
    return or_(*(and_(role == bindparam(f"role_{i}"), org == bindparam(f"org_{i}")) for i in range(count)))


def pair_values(pairs: Sequence[tuple[str, str]]) -> dict[str, str]:
    """The parameters of ``matches_pairs(..., len(pairs))`` for these pairs."""
    values: dict[str, str] = {}
    for i, (role, org) in enumerate(pairs):
        values[f"role_{i}"] = role
        values[f"org_{i}"] = org
    return values


def _check_count(count: int) -> None:
    if count < 1:
        raise ValueError("a statement for an empty list would match nothing: check for one first")
