"""Blueprint ``designer_forms``: the JSON Schema form editor with a live preview, for designers.

The schema is edited as text. Each change is posted to ``preview``, which reports JSON syntax errors
(line and column), JSON Schema (Draft 2020-12) errors and returns the form as a task page would render
it (``web.form_render``), optionally filled with test input and its validation messages. ``deploy``
checks every process with the edited form, then writes ``forms/<name>`` and deploys the processes that
use it (a new version each).
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from jsonschema import Draft202012Validator
from markupsafe import Markup
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict

from engine.errors import InvalidInput, SpecInvalid
from engine.models import ProcessVersion
from engine.specs import wrong_example
from web.auth import current_actor
from web.db import get_engine, get_session
from web.designer import findings_json, require_designer
from web.designer_files import check_form_name, deploy_changes, form_file, form_files, read_text
from web.form_render import build_fields, field_errors, parse_form
from web.i18n import error_message

bp = Blueprint("designer_forms", __name__, url_prefix="/designer/forms")
bp.before_request(require_designer)
NEW_FORM = '{\n  "title": "",\n  "type": "object",\n  "required": [],\n  "properties": {\n  }\n}\n'
_META = Draft202012Validator(Draft202012Validator.META_SCHEMA)


def schema_problems(text: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The parsed schema (None if unusable) and its problems: JSON syntax, Draft 2020-12, form shape."""
    try:
        schema = json.loads(text)
    except json.JSONDecodeError as exc:
        message = _(
            "JSON syntax error at line %(line)s, column %(column)s: %(message)s",
            line=exc.lineno,
            column=exc.colno,
            message=exc.msg,
        )
        return None, [{"kind": "syntax", "line": exc.lineno, "column": exc.colno, "path": "", "message": message}]
    problems = [
        {
            "kind": "schema",
            "line": None,
            "column": None,
            "path": "/" + "/".join(str(p) for p in error.absolute_path),
            "message": error.message,
        }
        for error in sorted(_META.iter_errors(schema), key=lambda e: [str(p) for p in e.absolute_path])
    ]
    if problems:
        return None, problems
    if not isinstance(schema, dict) or schema.get("type") != "object" or not isinstance(schema.get("properties"), dict):
        return None, [
            {
                "kind": "form",
                "line": None,
                "column": None,
                "path": "/",
                "message": _('A task form is an object schema: "type": "object" with "properties".'),
            }
        ]
    wrong = wrong_example(schema)
    if wrong:
        field, example, why = wrong
        message = _(
            "The example %(example)s of %(field)s does not fit the field itself: %(why)s",
            example=json.dumps(example, ensure_ascii=False),
            field=field,
            why=why,
        )
        return schema, [{"kind": "form", "line": None, "column": None, "path": field, "message": message}]
    return schema, []


def _users(name: str) -> dict[str, list[str]]:
    """Form file name -> ids of the processes whose latest deployed version uses it."""
    session = get_session()
    newest = session.execute(
        select(ProcessVersion.process_id, func.max(ProcessVersion.version)).group_by(ProcessVersion.process_id)
    ).all()
    users: dict[str, list[str]] = {}
    for pid, version in sorted(newest):
        forms = session.scalar(
            select(ProcessVersion.forms).where(ProcessVersion.process_id == pid, ProcessVersion.version == version)
        )
        for form in forms or {}:
            if not name or form == name:
                users.setdefault(form, []).append(pid)
    return users


@bp.route("/")
def index():  # noqa: ANN201
    engine = get_engine()
    titles = {}
    for name in form_files(engine):
        try:
            titles[name] = json.loads(read_text(form_file(engine, name)) or "{}").get("title", "")
        except (json.JSONDecodeError, AttributeError):
            titles[name] = ""
    return render_template("designer/forms.html", titles=titles, users=_users(""), tab="designer")


@bp.route("/new")
def new():  # noqa: ANN201
    name = (request.args.get("name") or "").strip()
    name = name if name.endswith(".json") else f"{name}.json"
    try:
        check_form_name(name)
    except InvalidInput:
        flash(_("A form file name uses letters, digits, dots, dashes and underscores."), "warning")
        return redirect(url_for("designer_forms.index"))
    return redirect(url_for("designer_forms.edit", name=name))


def _preview(schema: dict[str, Any] | None, values: MultiDict | None) -> str:
    if schema is None:
        return ""
    data = parse_form(schema, values) if values is not None else {}
    errors = field_errors(schema, data) if values is not None else {}
    fields = build_fields(schema, data, errors)
    return Markup(render_template("designer/_form_preview.html", schema=schema, fields=fields))  # rendered escaped


@bp.route("/<name>")
def edit(name: str):  # noqa: ANN201
    text = read_text(form_file(get_engine(), name))
    schema, problems = schema_problems(text or NEW_FORM)
    return render_template(
        "designer/form_edit.html",
        name=name,
        text=text if text is not None else NEW_FORM,
        exists=text is not None,
        problems=problems,
        preview=_preview(schema, None),
        users=_users(name).get(name, []),
        tab="designer",
    )


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("text"), str):
        abort(400)
    return body


@bp.route("/<name>/preview", methods=["POST"])
def preview(name: str):  # noqa: ANN201
    """Problems of the posted schema text and the rendered form (with ``values``: filled and checked)."""
    check_form_name(name)
    body = _body()
    schema, problems = schema_problems(body["text"])
    pairs = body.get("values")
    values = None
    if isinstance(pairs, list):
        values = MultiDict([(str(p[0]), str(p[1])) for p in pairs if isinstance(p, list) and len(p) == 2])
    return jsonify({"ok": not problems, "problems": problems, "html": _preview(schema, values)})


@bp.route("/<name>/deploy", methods=["POST"])
def deploy(name: str):  # noqa: ANN201
    check_form_name(name)
    text = _body()["text"]
    schema, problems = schema_problems(text)
    if problems:
        return jsonify({"ok": False, "problems": problems, "findings": []}), 422
    try:
        results, findings = deploy_changes(get_engine(), current_actor().username, forms={name: text})
    except SpecInvalid as exc:
        return jsonify({"ok": False, "problems": [], "findings": findings_json(exc.details)}), 422
    except InvalidInput:
        return jsonify({"ok": False, "problems": [], "findings": [], "message": error_message("too_large")}), 413
    created = [f"{r.process_id} v{r.version}" for r in results if r.created]
    if created:
        flash(_("Saved %(name)s and deployed: %(versions)s.", name=name, versions=", ".join(created)), "success")
    else:
        flash(_("Saved %(name)s; no process version changed.", name=name), "info")
    return jsonify(
        {
            "ok": True,
            "problems": [],
            "findings": findings_json(findings),
            "results": [r.__dict__ for r in results],
            "redirect": url_for("designer_forms.edit", name=name),
        }
    )
