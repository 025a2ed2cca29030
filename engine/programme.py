"""Programme-specific service operations that BPMN service tasks call by name.

The engine stays programme-agnostic: it only knows this registry. Each operation runs inside the
command's transaction, so a number it takes is given back if the command fails.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from engine.models import DocumentCounter

APPROVAL_PREFIX = "辽科协发"


@dataclass
class ServiceContext:
    session: Session
    now: datetime


def next_document_number(session: Session, prefix: str, year: int) -> int:
    """The next number for ``prefix`` in ``year``: no gaps, no duplicates (the row is locked)."""
    counter = session.get(DocumentCounter, (prefix, year), with_for_update=True)
    if counter is None:
        counter = DocumentCounter(prefix=prefix, year=year, last_number=0)
        session.add(counter)
    counter.last_number += 1
    session.flush()
    return counter.last_number


def issue_approval(context: ServiceContext, data: dict[str, Any], term_years: int = 3) -> dict[str, Any]:
    """Number the 批复 and fix the zone's term: from the approval date, ``term_years`` years."""
    today = context.now.date()
    number = next_document_number(context.session, APPROVAL_PREFIX, today.year)
    try:
        term_end = today.replace(year=today.year + term_years)
    except ValueError:  # 29 February
        term_end = today.replace(year=today.year + term_years, day=28)
    return {
        "approval_no": f"{APPROVAL_PREFIX}〔{today.year}〕{number}号",
        "approval_date": today.isoformat(),
        "term_start": today.isoformat(),
        "term_end": term_end.isoformat(),
    }


SERVICES: dict[str, Callable[..., dict[str, Any]]] = {
    "issue_approval": issue_approval,
}
