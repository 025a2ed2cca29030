"""Names the pages show for codes: org units for their codes, users for their usernames.

Each is looked up at most once per request: a task page names the same few org units and people in
its header, its timeline, its 案卷 and its transfer list, and asked the database each time.
"""

from __future__ import annotations

from flask import g
from sqlalchemy import Select, bindparam, select

from engine.models import OrgUnit, User
from web.db import get_session

_ORG_NAMES = select(OrgUnit.code, OrgUnit.name).where(OrgUnit.code.in_(bindparam("keys", expanding=True)))
_DISPLAY_NAMES = select(User.username, User.display_name).where(User.username.in_(bindparam("keys", expanding=True)))


def org_names(codes: set[str]) -> dict[str, str]:
    return _names("demozone_org_names", _ORG_NAMES, codes)


def display_names(usernames: set[str]) -> dict[str, str]:
    return _names("demozone_display_names", _DISPLAY_NAMES, usernames)


def _names(memo_key: str, statement: Select, keys: set[str]) -> dict[str, str]:
    known: dict[str, str | None] = g.setdefault(memo_key, {})
    missing = [key for key in keys if key and key not in known]
    if missing:
        found = dict(get_session().connection().execute(statement, {"keys": missing}).tuples().all())
        known.update({key: found.get(key) for key in missing})  # None: looked up, and there is none
    return {key: name for key in keys if key and (name := known.get(key)) is not None}
