"""Blueprint ``designer``: processes and their versions, the BPMN modeler, validation, deploy, version diff.

Only the ``designer`` role may use these pages (``require_designer`` runs before every view of the
designer blueprints). Designers see process definitions, forms and counts, never case data.
The form editor is ``web.designer_forms``, case migration ``web.designer_migrate``; files and deploys
go through ``web.designer_files``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, select

from engine.errors import InvalidInput, SpecInvalid
from engine.migration import diff_versions
from engine.models import Instance, ProcessVersion
from web.auth import current_actor
from web.db import get_engine, get_session
from web.designer_files import (
    MAX_SOURCE_BYTES,
    NEW_PROCESS,
    check_changes,
    check_process_id,
    deploy_changes,
    element_names,
    errors_of,
    process_file,
    process_files,
    read_text,
    same_source,
)
from web.i18n import error_message

bp = Blueprint("designer", __name__, url_prefix="/designer")
DESIGNER_ROLE = "designer"
MODELER_SCRIPT = Path(__file__).parent / "static" / "vendor" / "bpmn-js" / "bpmn-modeler.production.min.js"
VIEWER_SCRIPT = Path(__file__).parent / "static" / "vendor" / "bpmn-js" / "bpmn-navigated-viewer.production.min.js"


def require_designer() -> Any:
    """Before every designer view: signed in, and holding the designer role (else 403)."""
    if not current_user.is_authenticated:
        return current_app.login_manager.unauthorized()  # type: ignore[attr-defined]
    if not current_actor().has_role(DESIGNER_ROLE):
        abort(403)
    return None


bp.before_request(require_designer)


@dataclass
class VersionRow:
    id: int
    version: int
    name: str
    deployed_by: str
    deployed_at: datetime
    content_hash: str
    running: int = 0


@dataclass
class ProcessRow:
    process_id: str
    name: str
    versions: list[VersionRow] = field(default_factory=list)  # newest first
    has_file: bool = False
    file_differs: bool = False

    @property
    def running(self) -> int:
        return sum(v.running for v in self.versions)


def bpmn_source(version: ProcessVersion) -> str:
    sources = version.sources or {}
    return sources.get(f"{version.process_id}.bpmn") or next(
        (text for name, text in sources.items() if name.endswith(".bpmn")), ""
    )


def list_processes(process_id: str | None = None) -> list[ProcessRow]:
    """Every process in ``processes/`` or deployed, with its versions and running cases per version."""
    engine, session = get_engine(), get_session()
    running = dict(
        session.execute(
            select(Instance.process_version_id, func.count())
            .where(Instance.status == "running")
            .group_by(Instance.process_version_id)
        ).all()
    )
    query = select(
        ProcessVersion.id,
        ProcessVersion.process_id,
        ProcessVersion.name,
        ProcessVersion.version,
        ProcessVersion.deployed_by,
        ProcessVersion.deployed_at,
        ProcessVersion.content_hash,
    ).order_by(ProcessVersion.process_id, ProcessVersion.version.desc())
    if process_id:
        query = query.where(ProcessVersion.process_id == process_id)
    rows: dict[str, ProcessRow] = {}
    for vid, pid, name, version, by, at, content_hash in session.execute(query):
        row = rows.setdefault(pid, ProcessRow(pid, name))
        row.versions.append(VersionRow(vid, version, name, by, at, content_hash, running.get(vid, 0)))
    for pid in process_files(engine):
        if process_id and pid != process_id:
            continue
        row = rows.setdefault(pid, ProcessRow(pid, pid))
        row.has_file = True
        if row.versions:
            latest = session.get(ProcessVersion, row.versions[0].id)
            row.file_differs = not same_source(read_text(process_file(engine, pid)), bpmn_source(latest))
    return sorted(rows.values(), key=lambda r: r.process_id)


def _version_of(process_id: str, version_id: int) -> ProcessVersion:
    version = get_session().get(ProcessVersion, version_id)
    if version is None or version.process_id != process_id:
        abort(404)
    return version


@bp.route("/")
def index():  # noqa: ANN201
    return render_template("designer/index.html", processes=list_processes(), tab="designer")


@bp.route("/processes/<process_id>")
def process(process_id: str):  # noqa: ANN201
    found = list_processes(check_process_id(process_id))
    if not found:
        abort(404)
    return render_template("designer/process.html", process=found[0], tab="designer")


def _editor(process_id: str, xml: str, origin: str) -> str:
    return render_template(
        "designer/edit.html",
        process_id=process_id,
        xml=xml,
        origin=origin,
        modeler=MODELER_SCRIPT.exists(),
        tab="designer",
    )


@bp.route("/processes/new")
def new_process():  # noqa: ANN201
    process_id = (request.args.get("process_id") or "").strip()
    try:
        check_process_id(process_id)
    except InvalidInput:
        flash(_("A process id starts with a letter and uses letters, digits, dashes and underscores."), "warning")
        return redirect(url_for("designer.index"))
    return redirect(url_for("designer.edit", process_id=process_id))


@bp.route("/processes/<process_id>/edit")
def edit(process_id: str):  # noqa: ANN201
    """The modeler on a stored version (``?version=``), else the file in processes/, else the latest version."""
    engine, session = get_engine(), get_session()
    check_process_id(process_id)
    version_id = request.args.get("version", type=int)
    if version_id is not None:
        version = _version_of(process_id, version_id)
        return _editor(process_id, bpmn_source(version), _("version %(version)s", version=version.version))
    text = read_text(process_file(engine, process_id))
    if text is not None:
        return _editor(process_id, text, _("the file in processes/"))
    latest = session.scalar(
        select(ProcessVersion).where(ProcessVersion.process_id == process_id).order_by(ProcessVersion.version.desc())
    )
    if latest is not None:
        return _editor(process_id, bpmn_source(latest), _("version %(version)s", version=latest.version))
    return _editor(process_id, NEW_PROCESS.format(pid=process_id), _("a new process"))


@bp.route("/processes/upload", methods=["POST"])
def upload():  # noqa: ANN201
    """Open an uploaded .bpmn file in the modeler; nothing is stored until it is deployed."""
    upload = request.files.get("file")
    name = Path(upload.filename or "").name if upload else ""
    if not name.endswith(".bpmn"):
        flash(_("Choose a .bpmn file named after its process id."), "warning")
        return redirect(url_for("designer.index"))
    try:
        process_id = check_process_id(name[: -len(".bpmn")])
        text = upload.read(MAX_SOURCE_BYTES + 1).decode("utf-8")
    except (InvalidInput, UnicodeDecodeError):
        flash(_("The file name is not a process id, or the file is not UTF-8 text."), "warning")
        return redirect(url_for("designer.index"))
    if len(text.encode("utf-8")) > MAX_SOURCE_BYTES:
        flash(error_message("too_large"), "warning")
        return redirect(url_for("designer.index"))
    return _editor(process_id, text, _("the uploaded file %(name)s", name=name))


def json_field(name: str) -> str:
    body = request.get_json(silent=True)
    value = body.get(name) if isinstance(body, dict) else None
    if not isinstance(value, str) or not value.strip():
        abort(400)
    return value


def findings_json(findings: list[Any]) -> list[dict[str, Any]]:
    return [f.to_dict() for f in findings]


@bp.route("/processes/<process_id>/validate", methods=["POST"])
def validate(process_id: str):  # noqa: ANN201
    """Lint the edited BPMN together with every other process file and form, as a deploy would."""
    name = f"{check_process_id(process_id)}.bpmn"
    try:
        findings = check_changes(get_engine(), {name: json_field("xml")})
    except InvalidInput:
        return jsonify({"ok": False, "file": name, "findings": [], "message": error_message("too_large")}), 413
    return jsonify({"ok": not errors_of(findings), "file": name, "findings": findings_json(findings)})


@bp.route("/processes/<process_id>/deploy", methods=["POST"])
def deploy(process_id: str):  # noqa: ANN201
    """Check everything with the edited file, then write it into processes/ and deploy; refuse with findings."""
    name = f"{check_process_id(process_id)}.bpmn"
    xml = json_field("xml")
    try:
        results, findings = deploy_changes(get_engine(), current_actor().username, processes={name: xml})
    except SpecInvalid as exc:
        return jsonify({"ok": False, "file": name, "findings": findings_json(exc.details)}), 422
    except InvalidInput:
        return jsonify({"ok": False, "file": name, "findings": [], "message": error_message("too_large")}), 413
    mine = next((r for r in results if r.process_id == process_id), None)
    if mine is not None and mine.created:
        flash(
            _("Version %(version)s of %(process)s has been deployed.", version=mine.version, process=process_id),
            "success",
        )
    else:
        flash(_("Nothing changed: no new version was deployed."), "info")
    return jsonify(
        {
            "ok": True,
            "file": name,
            "findings": findings_json(findings),
            "results": [r.__dict__ for r in results],
            "redirect": url_for("designer.process", process_id=process_id),
        }
    )


@bp.route("/processes/<process_id>/diff")
def diff(process_id: str):  # noqa: ANN201
    """Elements added, removed and changed between two versions, drawn on both diagrams."""
    versions = session_versions(check_process_id(process_id))
    if len(versions) < 2:
        flash(_("A process needs two deployed versions to compare."), "info")
        return redirect(url_for("designer.process", process_id=process_id))
    older = _version_of(process_id, request.args.get("from", type=int) or versions[1].id)
    newer = _version_of(process_id, request.args.get("to", type=int) or versions[0].id)
    if older.version > newer.version:
        older, newer = newer, older
    changes = diff_versions(get_engine(), get_session(), older.id, newer.id)
    old_xml, new_xml = bpmn_source(older), bpmn_source(newer)
    names = {**element_names(old_xml), **element_names(new_xml)}
    return render_template(
        "designer/diff.html",
        process_id=process_id,
        versions=versions,
        older=older,
        newer=newer,
        changes=changes,
        names=names,
        diagrams={
            "older": {"xml": old_xml, "markers": {"removed": changes.removed, "changed": changes.changed}},
            "newer": {"xml": new_xml, "markers": {"added": changes.added, "changed": changes.changed}},
        },
        viewer=VIEWER_SCRIPT.exists(),
        tab="designer",
    )


def session_versions(process_id: str) -> list[VersionRow]:
    found = list_processes(process_id)
    if not found or not found[0].versions:
        abort(404)
    return found[0].versions
