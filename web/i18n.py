"""Languages: Chinese by default, English on request; labels for the engine's codes.

UI strings are English msgids translated by the catalogs in ``web/translations``. The engine's own
data (step names, process names, org names, form titles) is Chinese content and is shown as it is.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, g, has_request_context, request, session
from flask_babel import format_datetime, get_locale, get_translations
from flask_babel import lazy_gettext as _l
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup

from engine.clock import as_utc

LANGUAGES = {"zh": "中文", "en": "English"}
DEFAULT_LOCALE = "zh"
TIMEZONE = "Asia/Shanghai"
BEIJING = ZoneInfo(TIMEZONE)
# The numeric date patterns the pages use read the same in every locale, so they are formatted with
# strftime: Babel parses its pattern and resolves the locale and timezone on every call, and an inbox
# page formats ~40 dates. Any other pattern still goes through Babel.
NUMERIC_PATTERNS = {
    "yyyy-MM-dd HH:mm:ss": "%Y-%m-%d %H:%M:%S",
    "yyyy-MM-dd HH:mm": "%Y-%m-%d %H:%M",
    "yyyy-MM-dd": "%Y-%m-%d",
}
TRANSLATIONS_DIR = Path(__file__).parent / "translations"
log = logging.getLogger(__name__)

ROLE_LABELS = {
    "city_talent_office": _l("City Talent Office"),
    "city_org_dept": _l("City Organization Department"),
    "city_sa": _l("City Association for Science and Technology"),
    "county_party": _l("County Party Committee"),
    "county_gov": _l("County Government"),
    "province_office": _l("Provincial Association, Societies Department"),
    "province_org_dept": _l("Provincial Organization Department"),
    "society": _l("Provincial Society"),
    "zone_office": _l("Zone Leading Group Office"),
    "auditor": _l("Auditor"),
    "designer": _l("Process Designer"),
    "admin": _l("Administrator"),
}
COMMAND_LABELS = {
    "start": _l("Started"),
    "complete": _l("Submitted"),
    "return": _l("Returned"),
    "claim": _l("Signed for"),
    "unclaim": _l("Released"),
    "transfer": _l("Transferred"),
    "comment": _l("Comment"),
    "attachment": _l("Attachment uploaded"),
    "timer": _l("Timer fired"),
    "migrate": _l("Moved to another process version"),
    "document": _l("Document issued"),
    "terminate": _l("Case terminated"),
}
URGENCY_LABELS = {"平件": _l("Normal"), "加急": _l("Urgent"), "特急": _l("Extra urgent")}
URGENCY_BADGES = {"平件": "normal", "加急": "urgent", "特急": "critical"}  # the badge's CSS class: urgency-<this>
STATUS_LABELS = {
    "running": _l("In progress"),
    "completed": _l("Concluded"),
    "error": _l("Error"),
    "terminated": _l("Terminated"),
}
ERROR_MESSAGES = {
    "not_found": _l("The item does not exist, or you may not see it."),
    "forbidden": _l("You may not do this."),
    "invalid_input": _l("Some fields are not filled in correctly."),
    "conflict": _l("Someone else changed this case or handled this task at the same time. Reload and try again."),
    "task_not_ready": _l("This task cannot be handled in this way now."),
    "workflow_failed": _l("The process could not continue with this data; nothing was saved."),
    "spec_invalid": _l("The process definition is invalid."),
    "engine_error": _l("The request could not be carried out."),
    "bad_request": _l("The request is not valid."),
    "unauthorized": _l("Please sign in first."),
    "method_not_allowed": _l("This action is not available here."),
    "too_large": _l("The upload is too large."),
    "too_many_requests": _l("Too many attempts. Please try again later."),
    "csrf": _l("The page has expired. Go back, reload the page and try again."),
    "internal_error": _l("Something went wrong on our side. The error has been logged."),
}


def select_locale() -> str:
    """The API follows Accept-Language; pages follow the user's choice; otherwise Chinese."""
    if request.path.startswith("/api/"):
        return request.accept_languages.best_match(list(LANGUAGES), DEFAULT_LOCALE) or DEFAULT_LOCALE
    chosen = session.get("lang")
    return chosen if chosen in LANGUAGES else DEFAULT_LOCALE


def _translated(labels: dict[str, Any], key: str) -> str:
    """The label of ``key`` in the request's language, translated once per request: a page shows the
    same few roles and urgencies on every row, and each translation walks Flask-Babel's context."""
    label = labels.get(key)
    if label is None:
        return key
    if not has_request_context():
        return str(label)
    memo: dict[int, str] = g.setdefault("demozone_labels", {})
    text = memo.get(id(label))
    if text is None:
        text = memo[id(label)] = str(label)
    return text


def role_label(key: str | None) -> str:
    return _translated(ROLE_LABELS, key or "")


def command_label(key: str) -> str:
    return _translated(COMMAND_LABELS, key)


def urgency_label(value: str) -> str:
    return _translated(URGENCY_LABELS, value)


def urgency_badge(value: str) -> str:
    return URGENCY_BADGES.get(value, "normal")


def status_label(value: str) -> str:
    return _translated(STATUS_LABELS, value)


def error_message(code: str) -> str:
    return str(ERROR_MESSAGES.get(code, ERROR_MESSAGES["engine_error"]))


def format_time(value: datetime | None, pattern: str = "yyyy-MM-dd HH:mm") -> str:
    """A stored (UTC) instant in Beijing time."""
    if not value:
        return ""
    numeric = NUMERIC_PATTERNS.get(pattern)
    if numeric is not None:
        return as_utc(value).astimezone(BEIJING).strftime(numeric)
    return format_datetime(as_utc(value), pattern)


def format_date(value: datetime | None) -> str:
    return format_time(value, "yyyy-MM-dd")


def request_catalog() -> Any:
    """The translations of the current locale, each looked up through Flask-Babel once per request.

    Flask-Babel finds them anew on every call (walking the request context and formatting the locale),
    and a page translates about 50 strings. Kept per locale object, so ``force_locale`` and ``refresh``
    still take effect.
    """
    locale = get_locale()
    if locale is None:  # no app context: Flask-Babel's catalog without translations
        return get_translations()
    kept: dict[int, tuple[Any, Any]] = g.setdefault("demozone_catalogs", {})
    entry = kept.get(id(locale))
    if entry is None:  # the entry holds the locale, so no other object can take its id meanwhile
        entry = kept[id(locale)] = (locale, get_translations())
    return entry[1]


class _RequestCatalog:
    """The request's catalog, found on each call: for macros rendered without a template context."""

    def ugettext(self, message: str) -> str:
        return request_catalog().ugettext(message)

    def ungettext(self, singular: str, plural: str, num: int) -> str:
        return request_catalog().ungettext(singular, plural, num)


def _new_style_gettext(catalog: Any) -> dict[str, Any]:
    """Jinja's new-style ``gettext`` and ``ngettext`` (autoescaped, always %-formatted) over ``catalog``."""

    @pass_context
    def gettext(context: Context, message: str, **variables: Any) -> str:
        text = catalog.ugettext(message)
        return (Markup(text) if context.eval_ctx.autoescape else text) % variables

    @pass_context
    def ngettext(context: Context, singular: str, plural: str, num: int, **variables: Any) -> str:
        variables.setdefault("num", num)
        text = catalog.ungettext(singular, plural, num)
        return (Markup(text) if context.eval_ctx.autoescape else text) % variables

    return {"gettext": gettext, "ngettext": ngettext}


def template_gettext() -> dict[str, Any]:
    """``gettext`` and ``ngettext`` for one template render, bound to the request's catalog.

    Flask-Babel's template callables look the catalog up through the request context on every call
    (about 50 per page). Bound once per render instead, the output is the same. A macro imported
    without context, such as an inbox row, does not see these: it gets the environment's, below.
    """
    return _new_style_gettext(request_catalog())


def compile_catalogs(directory: Path = TRANSLATIONS_DIR) -> None:
    """Compile each ``messages.po`` whose ``messages.mo`` is missing or older (as `make setup` does)."""
    for po_path in directory.glob("*/LC_MESSAGES/messages.po"):
        mo_path = po_path.with_suffix(".mo")
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        try:
            with po_path.open("rb") as po_file:
                catalog = read_po(po_file, locale=po_path.parent.parent.name)
            with mo_path.open("wb") as mo_file:
                write_mo(mo_file, catalog)
        except OSError as exc:  # a read-only install: the catalogs were compiled at set-up
            log.warning("cannot compile %s: %s", po_path, exc)


def init_app(app: Flask) -> None:
    compile_catalogs()
    app.jinja_env.filters.update(
        role=role_label,
        command=command_label,
        urgency=urgency_label,
        urgency_badge=urgency_badge,
        status=status_label,
        time=format_time,
        date=format_date,
        nl2br=lambda text: Markup("<br>").join(str(text or "").splitlines()),
    )
    app.jinja_env.globals.update(LANGUAGES=LANGUAGES, get_locale=get_locale)
    # In place of Flask-Babel's environment callables, for templates rendered without a context: an
    # inbox row rendered afresh translates ten strings, and Flask-Babel's lookup was two thirds of its time.
    app.jinja_env.globals.update(_new_style_gettext(_RequestCatalog()))
    app.context_processor(template_gettext)
