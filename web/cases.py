"""Blueprint ``cases``: the case page (header, timeline, 案卷, BPMN diagram with progress), starting a
case (发起), comments (意见), attachments (附件) and official documents (公文) of a case. What the page
shows of the history is built in ``web.timeline``.

Permissions are the engine's: a case page is ``Engine.get_instance`` (a case outside the reader's
scope does not exist for them), attachments are served by ``casefile.get_attachment`` and documents by
``documents.get_document``.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_required

from engine import casefile, documents, inbox
from engine.access import Actor, check_may_read
from engine.errors import Conflict, InvalidInput, NotFound
from engine.models import Attachment, Instance, ProcessVersion
from web.auth import current_actor
from web.db import get_engine, get_session, write
from web.form_render import build_fields, localize_errors, parse_form, unplaced_errors
from web.i18n import error_message
from web.names import display_names, org_names
from web.security import safe_next
from web.timeline import attachment_index, case_header, dossier, timeline

bp = Blueprint("cases", __name__)
VIEWER_SCRIPT = Path(__file__).parent / "static" / "vendor" / "bpmn-js" / "bpmn-navigated-viewer.production.min.js"


def _bpmn_source(version: ProcessVersion) -> str | None:
    sources = version.sources or {}
    preferred = f"{version.process_id}.bpmn"
    if preferred in sources:
        return sources[preferred]
    return next((text for name, text in sources.items() if name.endswith(".bpmn")), None)


@bp.route("/cases/<uuid:instance_id>")
@login_required
def show(instance_id: uuid.UUID):  # noqa: ANN201
    actor = current_actor()
    engine, session = get_engine(), get_session()
    view = engine.get_instance(session, actor, instance_id)
    events = engine.history(session, actor, instance_id)
    header, version = case_header(instance_id)
    completed = sorted({step for e in events for step in (e.payload or {}).get("completed", [])})
    active = sorted({t.step for t in view.open_tasks})
    attachments = casefile.list_attachments(engine, session, actor, instance_id)
    comments = casefile.list_comments(engine, session, actor, instance_id)
    official_documents = documents.list_documents(session, actor, instance_id)
    return render_template(
        "cases/show.html",
        case=header,
        view=view,
        actor=actor,
        timeline=timeline(events, version),
        dossier=dossier(events, version, header.process),
        comments=comments,
        attachments=attachments,
        documents=official_documents,
        files=attachment_index(attachments),
        people=display_names({c.author for c in comments}),
        diagram={"completed": completed, "active": active, "url": url_for("cases.diagram", instance_id=instance_id)},
        orgs=org_names({t.org_code for t in view.open_tasks}),
        may_act=lambda task: actor.holds(task.role, task.org_code) and task.claimed_by in (None, actor.username),
        may_comment=bool(actor.lane_assignments()),
        bpmn_viewer=VIEWER_SCRIPT.exists(),
    )


@bp.route("/cases/<uuid:instance_id>/diagram.bpmn")
@login_required
def diagram(instance_id: uuid.UUID):  # noqa: ANN201
    session = get_session()
    instance = session.get(Instance, instance_id)
    if instance is None:
        raise NotFound(f"instance {instance_id} not found")
    check_may_read(session, current_actor(), instance)
    source = _bpmn_source(session.get(ProcessVersion, instance.process_version_id))
    if source is None:
        abort(404)
    return Response(source, mimetype="application/xml")


def _start_options(actor: Actor) -> list[dict[str, Any]]:
    engine, session = get_engine(), get_session()
    options = []
    for option in inbox.startable(engine, session, actor):
        schema = engine.store.latest_version(session, option.process_id).forms.get(
            f"{option.process_id}.start.json", {}
        )
        extra = {**schema, "properties": {k: v for k, v in schema.get("properties", {}).items() if k != "county_code"}}
        options.append({"option": option, "schema": extra})
    return options


@bp.route("/cases/new", methods=["GET", "POST"])
@login_required
def start():  # noqa: ANN201
    """发起: start a case of a process the actor may start, for a county of the actor's scope."""
    actor = current_actor()
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    chosen = request.values.get("process", "")
    if request.method == "POST":
        engine = get_engine()
        options = {o["option"].process_id: o for o in _start_options(actor)}
        schema = options[chosen]["schema"] if chosen in options else {}
        values = {**parse_form(schema, request.form), "county_code": request.form.get("county_code", "")}
        try:
            with write() as session:
                view = engine.start_instance(session, actor, chosen, values)
        except InvalidInput as exc:
            errors = localize_errors(schema, values, exc.details)
        except Conflict:
            errors = {"county_code": _("A case of this process is already running for this county.")}
        else:
            flash(_("The case has been started: %(key)s", key=view.business_key), "success")
            mine = [t for t in view.open_tasks if actor.holds(t.role, t.org_code)]
            if mine:
                return redirect(url_for("tasks.show", task_id=mine[0].id))
            return redirect(url_for("cases.show", instance_id=view.id))
    options = _start_options(actor)
    if not options:
        abort(403)
    forms = [
        {
            **o,
            "fields": build_fields(o["schema"], values if o["option"].process_id == chosen else {}, errors),
            "errors": errors if o["option"].process_id == chosen else {},
        }
        for o in options
    ]
    for form in forms:
        form["unplaced"] = {
            k: v for k, v in unplaced_errors(form["fields"], form["errors"]).items() if k != "county_code"
        }
    return render_template("cases/new.html", forms=forms, chosen=chosen, values=values), 400 if errors else 200


def _back(instance_id: uuid.UUID) -> str:
    return safe_next(request.form.get("next"), url_for("cases.show", instance_id=instance_id))


def _task_id_field() -> uuid.UUID | None:
    value = request.form.get("task_id") or ""
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        abort(400)


@bp.route("/cases/<uuid:instance_id>/comments", methods=["POST"])
@login_required
def comment(instance_id: uuid.UUID):  # noqa: ANN201
    try:
        with write() as session:
            casefile.add_comment(
                get_engine(), session, current_actor(), instance_id, request.form.get("body", ""), _task_id_field()
            )
        flash(_("Your comment has been added."), "success")
    except InvalidInput as exc:
        details = exc.details if isinstance(exc.details, dict) else {}
        flash(error_message(exc.code) + " " + " ".join(map(str, details.values())), "error")
    return redirect(_back(instance_id))


def store_upload(instance_id: uuid.UUID, upload: Any, task_id: uuid.UUID | None) -> Attachment:
    """Attach an uploaded file to the case in its own committed transaction."""
    with write() as session:
        return casefile.add_attachment(
            get_engine(), session, current_actor(), instance_id, upload.filename or "", upload.read(), task_id
        )


@bp.route("/cases/<uuid:instance_id>/attachments", methods=["POST"])
@login_required
def upload(instance_id: uuid.UUID):  # noqa: ANN201
    file = request.files.get("file")
    if file is None or not file.filename:
        flash(_("Choose a file to upload."), "warning")
        return redirect(_back(instance_id))
    try:
        attachment = store_upload(instance_id, file, _task_id_field())
        flash(_("Uploaded %(name)s.", name=attachment.filename), "success")
    except (InvalidInput, Conflict) as exc:
        details = exc.details if isinstance(exc.details, dict) else {}
        flash(error_message(exc.code) + " " + " ".join(map(str, details.values())), "error")
    return redirect(_back(instance_id))


def _content_disposition(disposition: str, filename: str) -> str:
    """A header every browser reads: an ASCII fallback, and the UTF-8 name (RFC 6266 / RFC 5987)."""
    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "_").replace("?", "_")
    return f"{disposition}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


def document_response(document_id: uuid.UUID, actor: Actor) -> Response:
    """The PDF of an official document, shown in the browser; 404 for anyone who may not read its case."""
    document = documents.get_document(get_session(), actor, document_id)
    response = Response(document.content, mimetype="application/pdf")
    response.headers["Content-Disposition"] = _content_disposition("inline", documents.download_name(document))
    response.headers["X-Document-SHA256"] = document.sha256
    return response


@bp.route("/documents/<uuid:document_id>")
@login_required
def document(document_id: uuid.UUID):  # noqa: ANN201
    return document_response(document_id, current_actor())


@bp.route("/attachments/<uuid:attachment_id>")
@login_required
def download(attachment_id: uuid.UUID):  # noqa: ANN201
    attachment = casefile.get_attachment(get_engine(), get_session(), current_actor(), attachment_id)
    response = Response(attachment.content, mimetype=attachment.content_type)
    response.headers["Content-Disposition"] = _content_disposition("attachment", attachment.filename)
    response.headers["X-Attachment-SHA256"] = attachment.sha256
    return response
