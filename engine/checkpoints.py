"""Global anchors: checkpoints of the whole log, so deleting a case with all its events, or truncating
the log, is detected.

A checkpoint records the time, the number of cases and events, a hash over every case's (id, head hash,
event count) in id order, and the administrators' chain head. Checkpoints are hash-chained to each
other; publish a checkpoint's hash outside the system (a printed report, an e-mail to the 领导小组) and
nobody can quietly replace the chain either. `audit verify` checks the current log against the latest.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, Text, func, select, type_coerce
from sqlalchemy.orm import Session

from engine.access import Actor
from engine.chain import ALTERED, walk_chain
from engine.clock import as_utc
from engine.history import event_hash, time_text
from engine.models import AdminEvent, AuditCheckpoint, Instance, canonical_json
from engine.useradmin import AdminChainStatus, admin_events, verify_admin_chain


@dataclass(frozen=True)
class CheckpointProblem:
    scope: str  # a case id, "admin" or "checkpoint"
    seq: int | None  # the checkpoint's number, for a broken checkpoint chain
    reason: str


def _cases_hash(cases_text: str) -> str:
    return hashlib.sha256(cases_text.encode()).hexdigest()


def _checkpoint_content(
    seq: int,
    at: datetime | str,
    created_by: str,
    cases: int,
    events: int,
    admin_events: int,
    admin_head: str | None,
    cases_hash: str,
) -> tuple[str | None, ...]:
    return (str(seq), time_text(at), created_by, str(cases), str(events), str(admin_events), admin_head, cases_hash)


def _current_cases(session: Session) -> list[list[Any]]:
    rows = session.execute(select(Instance.id, Instance.last_event_hash, Instance.event_count)).all()
    return sorted([str(row.id), row.last_event_hash, row.event_count] for row in rows)


def write_checkpoint(session: Session, at: datetime, created_by: str) -> AuditCheckpoint:
    """Anchor the log as it stands now (in the caller's transaction)."""
    at = as_utc(at)
    cases = _current_cases(session)
    admin = session.execute(select(AdminEvent.seq, AdminEvent.hash).order_by(AdminEvent.seq.desc()).limit(1)).first()
    admin_count, admin_head = (admin.seq, admin.hash) if admin else (0, None)
    last = session.execute(
        select(AuditCheckpoint.seq, AuditCheckpoint.hash).order_by(AuditCheckpoint.seq.desc()).limit(1)
    ).first()
    seq, prev_hash = (last.seq + 1, last.hash) if last else (1, None)
    cases_hash = _cases_hash(canonical_json(cases))
    events = sum(count for _id, _head, count in cases)
    checkpoint = AuditCheckpoint(
        seq=seq,
        at=at,
        created_by=created_by,
        case_count=len(cases),
        event_count=events,
        admin_event_count=admin_count,
        admin_head=admin_head,
        cases=cases,
        cases_hash=cases_hash,
        prev_hash=prev_hash,
    )
    content = _checkpoint_content(seq, at, created_by, len(cases), events, admin_count, admin_head, cases_hash)
    checkpoint.hash = event_hash(prev_hash, content)
    session.add(checkpoint)
    session.flush()
    return checkpoint


def verify_checkpoints(session: Session) -> tuple[int, str | None, list[CheckpointProblem]]:
    """Check the checkpoint chain, then the current log against the latest checkpoint.

    Returns the number of checkpoints, the latest one's hash, and the problems found."""
    table = AuditCheckpoint.__table__.c
    rows = (
        session.execute(
            select(
                table.seq,
                type_coerce(table.at, String),
                table.created_by,
                table.case_count,
                table.event_count,
                table.admin_event_count,
                table.admin_head,
                type_coerce(table.cases, Text),
                table.cases_hash,
                table.prev_hash,
                table.hash,
            ).order_by(table.seq, table.id)
        )
        .tuples()
        .all()
    )
    problems: list[CheckpointProblem] = []

    def content(row: Any) -> tuple[str | None, ...]:
        seq, at, created_by, cases, events, admin_count, admin_head, cases_text, cases_hash, _prev, _stored = row
        # An edited case list (or list hash) must fail like an edited field: hash a value that cannot match.
        if _cases_hash(cases_text) != cases_hash:
            cases_hash = f"{cases_hash} != {_cases_hash(cases_text)}"
        return _checkpoint_content(seq, at, created_by, cases, events, admin_count, admin_head, cases_hash)

    walk = walk_chain(rows, content, seq_at=0, prev_at=9, hash_at=10)
    if walk.broken:
        reason = (
            "content does not match its hash (altered)"
            if walk.broken.kind == ALTERED
            else "the checkpoint chain is broken (deleted, inserted or reordered)"
        )
        problems.append(CheckpointProblem("checkpoint", walk.broken.seq, reason))
        return len(rows), None, problems
    if not rows:
        return 0, None, problems
    latest = session.scalar(select(AuditCheckpoint).order_by(AuditCheckpoint.seq.desc()).limit(1))
    problems.extend(_against_latest(session, latest))
    return len(rows), latest.hash, problems


def _against_latest(session: Session, latest: AuditCheckpoint) -> list[CheckpointProblem]:
    problems = []
    now = {case_id: (head, count) for case_id, head, count in _current_cases(session)}
    for case_id, head, count in latest.cases:
        if case_id not in now:
            problems.append(
                CheckpointProblem(case_id, None, f"missing, with its {count} events, since checkpoint #{latest.seq}")
            )
        elif now[case_id][1] < count:
            problems.append(
                CheckpointProblem(
                    case_id, None, f"has {now[case_id][1]} events, checkpoint #{latest.seq} recorded {count}"
                )
            )
        elif now[case_id][1] == count and now[case_id][0] != head:
            problems.append(
                CheckpointProblem(case_id, None, f"its history was rewritten since checkpoint #{latest.seq}")
            )
    admin_count = session.scalar(select(func.count()).select_from(AdminEvent)) or 0
    if admin_count < latest.admin_event_count:
        problems.append(
            CheckpointProblem(
                "admin",
                None,
                f"{admin_count} admin events, checkpoint #{latest.seq} recorded {latest.admin_event_count}",
            )
        )
    elif latest.admin_event_count:
        head = session.scalar(select(AdminEvent.hash).where(AdminEvent.seq == latest.admin_event_count))
        if head != latest.admin_head:
            problems.append(
                CheckpointProblem("admin", None, f"the admin chain was rewritten since checkpoint #{latest.seq}")
            )
    return problems


def latest_checkpoint(session: Session) -> AuditCheckpoint | None:
    return session.scalar(select(AuditCheckpoint).order_by(AuditCheckpoint.seq.desc()).limit(1))


@dataclass
class AnchorStatus:
    """The administrators' chain and the global anchors, verified, for the auditor's read-only page."""

    admin: AdminChainStatus
    admin_events: list[AdminEvent]  # newest first
    checkpoint_count: int
    checkpoints: list[AuditCheckpoint]  # newest first
    problems: list[CheckpointProblem]  # a broken checkpoint chain, or the log's differences from the latest

    @property
    def ok(self) -> bool:
        return self.admin.ok and not self.problems


def anchor_status(session: Session, actor: Actor, limit: int = 50) -> AnchorStatus:
    """Verify the admin chain and the checkpoints; the newest ``limit`` of each (admins and auditors only)."""
    events = admin_events(session, actor, limit)
    count, _anchor, problems = verify_checkpoints(session)
    checkpoints = session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.seq.desc()).limit(limit)).all()
    return AnchorStatus(verify_admin_chain(session), events, count, list(checkpoints), problems)
