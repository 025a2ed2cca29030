"""Official documents (公文) of a case: render, number, store, list and re-generate them.

A document is issued once per case and kind (and per 创建年度 for the annual 考核结果通知, per 文号 for the
联合请示): issuing again returns the stored one. Its 文号 comes from the case data when the process already
numbered it (the 批复's approval_no, the 联合请示's own 文号, the 撤销 notice's number); otherwise it is the
next number of the issuing body's series for the year, taken from the locked counter row in the same
transaction, so a rolled-back issue leaves no gap and two concurrent issues never share a number.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, insert, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, defer

from engine.access import Actor, check_may_read
from engine.case_rows import CaseRow
from engine.clock import LOCAL_TZ
from engine.document_kinds import KINDS, Kind
from engine.document_rendering import fill_in, note_pending
from engine.errors import Conflict, InvalidInput, NotFound
from engine.gongwen import GongWen, render_pdf
from engine.history import append_event
from engine.models import Document, Instance
from engine.numbering import next_document_number
from engine.views import jsonable

if TYPE_CHECKING:
    from engine.programme import ServiceContext
    from engine.runtime import Engine

log = logging.getLogger(__name__)
DOCUMENT_KINDS = tuple(KINDS)


@dataclass(frozen=True)
class DocumentInfo:
    """A stored document without its bytes: what a case page lists."""

    id: uuid.UUID
    instance_id: uuid.UUID
    kind: str
    issuer: str
    document_no: str
    title: str
    issued_on: date
    sha256: str
    size: int
    created_at: datetime
    filename: str

    @classmethod
    def of(cls, document: Document) -> DocumentInfo:
        fill_in(document)
        return cls(
            document.id,
            document.instance_id,
            document.kind,
            document.issuer,
            document.document_no,
            document.title,
            date.fromisoformat(document.source["issued_on"]),
            document.sha256,
            len(document.content),
            document.created_at,
            download_name(document),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON of the API's document list."""
        return {
            "id": str(self.id),
            "instance": str(self.instance_id),
            "kind": self.kind,
            "issuer": self.issuer,
            "document_no": self.document_no,
            "title": self.title,
            "issued_on": self.issued_on.isoformat(),
            "sha256": self.sha256,
            "size": self.size,
            "filename": self.filename,
        }


@dataclass(frozen=True)
class RegenerateResult:
    kind: str
    document_no: str
    status: str  # issued | rendered | unchanged | differs


def download_name(document: Document) -> str:
    """A file name for the download: 文号 and title, without characters file systems refuse."""
    name = f"{document.document_no} {document.title}.pdf"
    return "".join("_" if ch in '\\/:*?"<>|' else ch for ch in name)


def _kind(kind: str) -> Kind:
    if kind not in KINDS:
        raise InvalidInput(f"unknown document kind {kind!r}", {"kind": f"one of {', '.join(KINDS)}"})
    return KINDS[kind]


def _compose(spec: Kind, data: dict[str, Any], issued_on: date, document_no: str) -> GongWen:
    try:
        return spec.build(data, issued_on, document_no)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        # Case data that does not have the shape a builder reads (a number as text, a list as a dict …).
        raise InvalidInput(f"the case data does not fit a {spec.name}: {exc!r}", {"kind": spec.name}) from exc


def render_document(kind: str, case_data: dict[str, Any], issued_on: date, document_no: str) -> bytes:
    """The PDF of one document; the same arguments always give the same bytes."""
    spec = _kind(kind)
    return render_pdf(_compose(spec, case_data, issued_on, document_no))


def local_date(now: datetime) -> date:
    return now.astimezone(LOCAL_TZ).date()


_LOCK_CASE = select(Instance.id).where(Instance.id == bindparam("case_id")).with_for_update()
_INSERT_DOCUMENT = insert(Document.__table__)
_DOCUMENTS_OF_KIND = (
    select(Document.id, Document.source)
    .where(Document.instance_id == bindparam("case_id"), Document.kind == bindparam("kind"))
    .order_by(Document.created_at)
)


def _find(session: Session, instance_id: uuid.UUID, kind: str, variant: str) -> Document | None:
    # Looked up as plain columns first: most calls find nothing, and a case's PDFs are ~100 KB each.
    rows = session.connection().execute(_DOCUMENTS_OF_KIND, {"case_id": instance_id, "kind": kind})
    found = next((document_id for document_id, source in rows if source.get("variant", "") == variant), None)
    return session.get(Document, found, options=[defer(Document.content)]) if found is not None else None


def issue_document_pdf(
    session: Session,
    instance: Instance | CaseRow,
    kind: str,
    now: datetime,
    data: dict[str, Any] | None = None,
    render: bool = True,
) -> Document:
    """Issue (or return the already issued) document ``kind`` of the case, from ``data`` or its final data.

    With ``render=False`` the document is numbered and stored without its PDF, which is rendered once the
    transaction commits (engine/document_rendering.py).
    """
    spec = _kind(kind)
    if data is None:
        if instance.result is None:
            raise InvalidInput(f"case {instance.id} is still running: pass its current data")
        data = instance.result
    data = jsonable(data)
    try:
        variant = spec.variant(data) if spec.applies(data) else None
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput(f"the case data does not fit a {kind}: {exc!r}", {"kind": kind}) from exc
    if variant is None:
        raise InvalidInput(f"case {instance.id} has no data for a {kind} yet", {"kind": kind})
    if session.get_bind().dialect.name == "postgresql":
        # Serialise issuing per case, so two concurrent calls cannot both find nothing and issue twice
        # (SQLite's write transactions are serial already).
        session.connection().execute(_LOCK_CASE, {"case_id": instance.id})
    existing = _find(session, instance.id, kind, variant)
    if existing is not None:
        return existing
    in_data = spec.date_in_data(data)
    issued_on = date.fromisoformat(str(in_data)[:10]) if in_data else local_date(now)
    issuer = spec.issuer(data)
    if spec.outside_series:
        # Document.issuer is unique with the 文号: a number from an outside series is told apart per case.
        issuer = f"{issuer[:44]}（案卷{instance.id.hex[:8]}）"
    document_no = spec.number_in_data(data)
    if not document_no:
        prefix = spec.prefix(data)
        document_no = f"{prefix}〔{issued_on.year}〕{next_document_number(session, prefix, issued_on.year)}号"
    gongwen = _compose(spec, data, issued_on, document_no)
    content = _typeset_now(gongwen) if render else None
    values = {
        "id": uuid.uuid4(),
        "instance_id": instance.id,
        "kind": kind,
        "issuer": issuer,
        "document_no": document_no,
        "title": gongwen.title,
        "content": content,
        "sha256": hashlib.sha256(content).hexdigest() if content is not None else None,
        "source": {"issued_on": issued_on.isoformat(), "variant": variant, "data": data},
        "created_at": now,
    }
    if isinstance(instance, Instance) and inspect(instance).pending:
        session.flush()  # a case started by this command: its row must exist before its documents
    try:
        session.connection().execute(_INSERT_DOCUMENT, values)
    except IntegrityError as exc:  # the unique (issuer, 文号): a number from the case data already used
        raise Conflict(f"{issuer} already issued {document_no}", {"document_no": document_no}) from exc
    document = Document(**values)  # what was stored, for the caller to read (the session does not track it)
    if content is None:
        note_pending(session, document.id, gongwen)
    return document


def _typeset_now(gongwen: GongWen) -> bytes | None:
    """The PDF; or None, leaving the document pending, if typesetting fails: a glyph or a layout the
    typesetter chokes on must not hold back the case (the document is typeset again after the commit,
    then by the sweep, and its error logged each time)."""
    try:
        return render_pdf(gongwen)
    except Exception:
        log.exception("document %s %s not typeset in its issuing transaction", gongwen.document_no, gongwen.title)
        return None


def issue_pdf(context: ServiceContext, task_data: dict[str, Any], kind: str) -> dict[str, Any]:
    """Service operation ``issue_pdf``: number and record document ``kind`` in the command's transaction.

    Where documents are rendered inline (CLI, tests) its PDF is typeset here and stored with its row, which
    spares a second write transaction; the server and the worker typeset it after the commit, so the
    writer lock never waits for the typesetter (engine/document_rendering.py). The SHA-256 is in the
    document list, not in the case data.
    """
    inline = context.engine.settings.document_rendering == "inline"
    document = issue_document_pdf(context.session, context.instance, kind, context.now, data=task_data, render=inline)
    return {"document_id": str(document.id), "document_no": document.document_no}


def _readable_instance(session: Session, actor: Actor, instance_id: uuid.UUID) -> Instance:
    instance = session.get(Instance, instance_id)
    if instance is None:
        raise NotFound(f"instance {instance_id} not found")
    check_may_read(session, actor, instance)
    return instance


def list_documents(session: Session, actor: Actor, instance_id: uuid.UUID) -> list[DocumentInfo]:
    """The case's documents in issue order, for whoever may read the case."""
    _readable_instance(session, actor, instance_id)
    rows = session.scalars(select(Document).where(Document.instance_id == instance_id))
    # Issue order; documents issued by one command follow the order of the process (请示, 意见表, 批复, …).
    ordered = sorted(rows, key=lambda d: (d.created_at, DOCUMENT_KINDS.index(d.kind), d.source.get("variant", "")))
    return [DocumentInfo.of(d) for d in ordered]


def get_document(session: Session, actor: Actor, document_id: uuid.UUID) -> Document:
    """One document with its bytes; NotFound unless the actor may read its case (ids cannot be probed)."""
    document = session.get(Document, document_id)
    if document is None:
        raise NotFound(f"document {document_id} not found")
    instance = session.get(Instance, document.instance_id)
    try:
        check_may_read(session, actor, instance)
    except NotFound:
        raise NotFound(f"document {document_id} not found") from None
    return fill_in(document)


def rerender(document: Document) -> bytes:
    """Render a stored document again from the data it was generated from."""
    source = document.source
    return render_document(document.kind, source["data"], date.fromisoformat(source["issued_on"]), document.document_no)


def _variants(kind: str, data: dict[str, Any]) -> list[dict[str, Any]]:
    """The data of each document of ``kind`` a case holds: one per recorded 创建年度 for the 考核结果通知."""
    if kind != "考核结果通知" or not data.get("year_results"):
        return [data] if KINDS[kind].applies(data) else []
    from engine.programme import add_years  # programme imports this module for issue_pdf

    variants = []
    for result in data["year_results"]:
        year = int(result["year"])
        entry = {**data, "term_year": year, "year_grade": result.get("grade"), "year_score": result.get("score")}
        entry["year_failed"] = result.get("failed")
        if data.get("term_start"):
            entry["year_start"] = add_years(data["term_start"], year - 1)
            entry["year_end"] = add_years(data["term_start"], year)
        variants.append(entry)
    return variants


def regenerate_documents(
    engine: Engine, session: Session, actor: Actor, instance_id: uuid.UUID
) -> list[RegenerateResult]:
    """For the CLI: issue the documents a case's data calls for and check the stored ones re-render identically.

    A stored document is never replaced (an issued 公文 does not change); ``differs`` reports one whose
    re-rendering no longer matches its SHA-256, e.g. after a layout change.
    """
    data = engine.get_instance(session, actor, instance_id).data  # checks that the actor may read the case
    instance = session.get(Instance, instance_id)
    results = []
    for kind, spec in KINDS.items():
        for entry in _variants(kind, data):
            existing = _find(session, instance_id, kind, spec.variant(entry))
            if existing is not None and existing.sha256 is None:
                fill_in(existing)  # issued, its PDF not rendered yet: stored with this transaction
                results.append(RegenerateResult(kind, existing.document_no, "rendered"))
                continue
            if existing is not None:
                same = hashlib.sha256(rerender(existing)).hexdigest() == existing.sha256
                results.append(RegenerateResult(kind, existing.document_no, "unchanged" if same else "differs"))
                continue
            document = issue_document_pdf(session, instance, kind, engine.now(), data=entry)
            append_event(
                session,
                instance,
                at=engine.now(),
                actor=actor.username,
                command="document",
                payload={"kind": kind, "document_no": document.document_no, "sha256": document.sha256},
            )
            results.append(RegenerateResult(kind, document.document_no, "issued"))
    return results
