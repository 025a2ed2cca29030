"""The append-only, hash-chained history of each case.

Each event's hash covers its stored column values and the hash of the case's previous event, and
the case row keeps the newest hash, so editing, deleting, inserting or reordering an event breaks
the chain. The payload is stored as its canonical JSON text and hashed as that text, so checking
the whole log never decodes or re-encodes a payload.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Text, bindparam, insert
from sqlalchemy.orm import Session

from engine.case_rows import CaseRow
from engine.clock import as_utc
from engine.flush_queue import write_at_flush
from engine.models import HistoryEvent, Instance, canonical_json
from engine.serializer import reject_unstorable

# Fields are joined with a separator canonical JSON and identifiers never contain; a missing value
# is written as a marker of its own, so None and "" hash differently.
FIELD_SEPARATOR = "\x1f"
MISSING = "\x00"


def event_hash(prev_hash: str | None, content: Sequence[str | None]) -> str:
    """SHA-256 over the previous hash and the event's fields (strings, in `hashed_fields` order)."""
    text = FIELD_SEPARATOR.join([MISSING if value is None else value for value in (prev_hash, *content)])
    return hashlib.sha256(text.encode()).hexdigest()


def time_text(at: datetime | str) -> str:
    """An event time as hashed: UTC wall time with microseconds, which is also how SQLite stores it,
    so verification on SQLite hashes the stored text without parsing it."""
    if isinstance(at, str):
        return at
    return as_utc(at).replace(tzinfo=None).isoformat(" ", "microseconds")


def uuid_text(value: uuid.UUID | str | None) -> str | None:
    """A UUID as hashed: 32 hex digits, which is also how SQLite stores it."""
    if value is None or isinstance(value, str):
        return value
    return value.hex


def hashed_fields(
    instance_id: uuid.UUID | str | None,
    seq: int,
    at: datetime | str,
    task_id: uuid.UUID | str | None,
    actor: str,
    role: str | None,
    org_code: str | None,
    command: str,
    bpmn_id: str | None,
    payload_text: str,
) -> tuple[str | None, ...]:
    """The fields an event's hash covers, in their order, as text (the payload as its canonical JSON)."""
    return (
        uuid_text(instance_id),
        str(seq),
        time_text(at),
        uuid_text(task_id),
        actor,
        role,
        org_code,
        command,
        bpmn_id,
        payload_text,
    )


def event_content(event: HistoryEvent) -> tuple[str | None, ...]:
    """The hashed fields of a loaded event (its payload re-encoded to the canonical text it is stored as)."""
    return hashed_fields(
        event.instance_id,
        event.seq,
        event.at,
        event.task_id,
        event.actor,
        event.role,
        event.org_code,
        event.command,
        event.bpmn_id,
        canonical_json(event.payload),
    )


# The payload is bound as the canonical text its hash was computed over, not encoded a second time.
_INSERT_EVENT = insert(HistoryEvent.__table__).values(payload=bindparam("payload_text", type_=Text()))


def append_event(
    session: Session,
    instance: Instance | CaseRow,
    *,
    at: datetime,
    actor: str,
    command: str,
    payload: dict[str, Any],
    role: str | None = None,
    org_code: str | None = None,
    task_id: uuid.UUID | None = None,
    bpmn_id: str | None = None,
) -> None:
    """Chain a new event to the case's history; it is written with the command's flush (engine/flush_queue.py)."""
    at = as_utc(at)  # SQLite keeps the wall time only: store it in UTC, as it is hashed
    seq = instance.event_count + 1
    values = {
        "instance_id": instance.id,
        "seq": seq,
        "at": at,
        "actor": actor,
        "role": role,
        "org_code": org_code,
        "command": command,
        "task_id": task_id,
        "bpmn_id": bpmn_id,
        "payload_text": canonical_json(payload),
        "prev_hash": instance.last_event_hash,
    }
    content = hashed_fields(
        instance.id, seq, at, task_id, actor, role, org_code, command, bpmn_id, values["payload_text"]
    )
    try:
        values["hash"] = event_hash(values["prev_hash"], content)
    except UnicodeEncodeError:
        # Text no database can store (a lone surrogate: the CLI's undecodable argv bytes, say) reached a
        # command's event without passing a form check: refuse it, naming the field.
        reject_unstorable(payload)
        raise
    instance.event_count = seq
    instance.last_event_hash = values["hash"]
    write_at_flush(session, _INSERT_EVENT, values)
