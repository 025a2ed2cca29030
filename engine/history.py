"""The append-only, hash-chained history of each case.

Each event's hash covers its content and the hash of the case's previous event, and the case row
keeps the newest hash, so editing, deleting, inserting or reordering an event breaks the chain.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from engine.clock import as_utc
from engine.models import HistoryEvent, Instance


def event_hash(prev_hash: str | None, content: dict[str, Any]) -> str:
    canonical = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(((prev_hash or "") + "\n" + canonical).encode()).hexdigest()


def event_content(event: HistoryEvent) -> dict[str, Any]:
    """The fields a hash covers, in a stable, database-independent form."""
    return {
        "instance_id": str(event.instance_id) if event.instance_id else None,
        "seq": event.seq,
        "at": as_utc(event.at).isoformat(),
        "actor": event.actor,
        "role": event.role,
        "org_code": event.org_code,
        "command": event.command,
        "task_id": str(event.task_id) if event.task_id else None,
        "bpmn_id": event.bpmn_id,
        "payload": event.payload,
    }


def append_event(
    session: Session,
    instance: Instance,
    *,
    at: datetime,
    actor: str,
    command: str,
    payload: dict[str, Any],
    role: str | None = None,
    org_code: str | None = None,
    task_id: uuid.UUID | None = None,
    bpmn_id: str | None = None,
) -> HistoryEvent:
    event = HistoryEvent(
        instance=instance,
        instance_id=instance.id,
        seq=instance.event_count + 1,
        at=at,
        actor=actor,
        role=role,
        org_code=org_code,
        command=command,
        task_id=task_id,
        bpmn_id=bpmn_id,
        payload=payload,
        prev_hash=instance.last_event_hash,
    )
    event.hash = event_hash(event.prev_hash, event_content(event))
    instance.event_count = event.seq
    instance.last_event_hash = event.hash
    session.add(event)
    return event
