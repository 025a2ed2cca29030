"""Names the pages show for codes: org units for their codes, users for their usernames.

Each is looked up at most once per request: a task page names the same few org units and people in
its header, its timeline, its 案卷 and its transfer list, and asked the database each time.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

from flask import g
from sqlalchemy import Select, select

from engine.bound_lists import in_list, list_values
from engine.models import OrgUnit, User
from web.db import get_session


@lru_cache(maxsize=64)
def _org_names(count: int) -> Select[tuple[str, str]]:
    return select(OrgUnit.code, OrgUnit.name).where(in_list(OrgUnit.code, count, "key"))


@lru_cache(maxsize=64)
def _display_names(count: int) -> Select[tuple[str, str]]:
    return select(User.username, User.display_name).where(in_list(User.username, count, "key"))


def org_names(codes: set[str]) -> dict[str, str]:
    return _names("demozone_org_names", _org_names, codes)


def display_names(usernames: set[str]) -> dict[str, str]:
    return _names("demozone_display_names", _display_names, usernames)


def _names(memo_key: str, statement_for: Callable[[int], Select], keys: set[str]) -> dict[str, str]:
    known: dict[str, str | None] = g.setdefault(memo_key, {})
    missing = [key for key in keys if key and key not in known]
    if missing:
        rows = get_session().connection().execute(statement_for(len(missing)), list_values("key", missing))
        found = dict(rows.tuples().all())
        known.update({key: found.get(key) for key in missing})  # None: looked up, and there is none
    return {key: name for key in keys if key and (name := known.get(key)) is not None}
