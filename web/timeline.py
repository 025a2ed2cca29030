"""A case as people read it: its header, the timeline of its history (流程跟踪) and the 案卷 (each
submitted form, read-only, under its form's titles). Used by the case page and the task page.

The caller has already been allowed to read the case (``Engine.get_instance``/``history``/``get_task``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import bindparam, select

from engine.models import Attachment, HistoryEvent, Instance
from engine.store import LoadedVersion
from web.db import get_engine, get_session
from web.form_render import Shown, show_data
from web.i18n import command_label
from web.names import display_names, org_names

DECISION_SUFFIXES = ("decision", "conclusion")


@dataclass
class CaseHeader:
    id: uuid.UUID
    process: str
    process_name: str
    version: int
    business_key: str
    status: str
    outcome: str | None
    county: str
    city: str
    started_by: str
    created_at: Any
    completed_at: Any


@dataclass
class Entry:
    """One line of the timeline (流程跟踪)."""

    seq: int
    at: Any
    actor: str
    role: str | None
    org: str
    command: str
    label: str
    step: str
    decision: str = ""
    detail: str = ""


@dataclass
class DossierPart:
    """One completed step's submitted data, read-only (案卷)."""

    seq: int
    at: Any
    actor: str
    step: str
    fields: list[Shown] = field(default_factory=list)


def step_names(version: LoadedVersion) -> dict[str, str]:
    specs = [version.spec, *version.subprocess_specs.values()]
    return {
        spec.bpmn_id: spec.bpmn_name or spec.bpmn_id
        for process in specs
        for spec in process.task_specs.values()
        if getattr(spec, "bpmn_id", None)
    }


def step_forms(version: LoadedVersion) -> dict[str, str]:
    specs = [version.spec, *version.subprocess_specs.values()]
    forms = {}
    for process in specs:
        for spec in process.task_specs.values():
            props = getattr(spec, "extensions", {}).get("properties", {}) if hasattr(spec, "extensions") else {}
            if getattr(spec, "bpmn_id", None) and props.get("formJsonSchemaFilename"):
                forms[spec.bpmn_id] = props["formJsonSchemaFilename"]
    return forms


_HEADER_COLUMNS = select(
    Instance.id,
    Instance.process_id,
    Instance.process_version_id,
    Instance.business_key,
    Instance.status,
    Instance.outcome,
    Instance.county_code,
    Instance.city_code,
    Instance.started_by,
    Instance.created_at,
    Instance.completed_at,
).where(Instance.id == bindparam("case_id"))


def case_header(instance_id: uuid.UUID, loaded: Instance | None = None) -> tuple[CaseHeader, LoadedVersion]:
    """The header of a case the caller has already been allowed to read (from its row if ``loaded``)."""
    session = get_session()
    row = loaded or session.connection().execute(_HEADER_COLUMNS, {"case_id": instance_id}).one()
    version = get_engine().store.version(session, row.process_version_id)
    names = org_names({row.county_code or "", row.city_code or ""})
    starter = display_names({row.started_by}).get(row.started_by, row.started_by)
    header = CaseHeader(
        row.id,
        row.process_id,
        version.name,
        version.version,
        row.business_key,
        row.status,
        row.outcome,
        names.get(row.county_code or "", ""),
        names.get(row.city_code or "", ""),
        starter,
        row.created_at,
        row.completed_at,
    )
    return header, version


def _decision(data: Any) -> str:
    if not isinstance(data, dict):
        return ""
    return "、".join(str(v) for k, v in data.items() if k.endswith(DECISION_SUFFIXES) and isinstance(v, str))


def timeline(events: list[HistoryEvent], version: LoadedVersion) -> list[Entry]:
    names = step_names(version)
    people = display_names(
        {e.actor for e in events} | {str(e.payload.get("to")) for e in events if e.command == "transfer"}
    )
    orgs = org_names({e.org_code or "" for e in events})
    entries = []
    for event in events:
        payload = event.payload or {}
        detail = ""
        if event.command in ("return", "terminate"):
            detail = str(payload.get("reason", ""))
        elif event.command == "transfer":
            target = str(payload.get("to", ""))
            detail = f"→ {people.get(target, target)}: {payload.get('reason', '')}"
        elif event.command == "comment":
            detail = str(payload.get("body", ""))
        elif event.command == "attachment":
            detail = str(payload.get("filename", ""))
        elif event.command == "timer":
            detail = "、".join(names.get(step, step) for step in payload.get("completed", []))
        entries.append(
            Entry(
                seq=event.seq,
                at=event.at,
                actor=people.get(event.actor, event.actor),
                role=event.role,
                org=orgs.get(event.org_code or "", event.org_code or ""),
                command=event.command,
                label=command_label(event.command),
                step=names.get(event.bpmn_id or "", event.bpmn_id or ""),
                decision=_decision(payload.get("data")) if event.command == "complete" else "",
                detail=detail,
            )
        )
    return entries


def dossier(events: list[HistoryEvent], version: LoadedVersion, process_id: str) -> list[DossierPart]:
    """Each submitted form of the case, oldest first, shown with its form's titles."""
    names, forms = step_names(version), step_forms(version)
    people = display_names({e.actor for e in events})
    parts = []
    for event in events:
        data = (event.payload or {}).get("data")
        if event.command not in ("start", "complete") or not isinstance(data, dict) or not data:
            continue
        if event.command == "start":
            schema, step = version.forms.get(f"{process_id}.start.json", {}), _("Case started")
        else:
            schema = version.forms.get(forms.get(event.bpmn_id or "", ""), {})
            step = names.get(event.bpmn_id or "", event.bpmn_id or "")
        parts.append(
            DossierPart(event.seq, event.at, people.get(event.actor, event.actor), step, show_data(schema, data))
        )
    return parts


def attachment_index(attachments: list[Attachment]) -> dict[str, Attachment]:
    return {str(a.id): a for a in attachments}
