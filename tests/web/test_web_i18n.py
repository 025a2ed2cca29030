"""The catalogs: every UI string translated into Chinese, placeholders kept, nothing left unextracted."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po
from flask import render_template_string
from flask_babel import force_locale

from tests.web.conftest import World

TRANSLATIONS = Path(__file__).parent.parent.parent / "web" / "translations"
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def catalog(lang: str):
    with (TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        return read_po(fh, locale=lang)


def test_every_message_has_a_chinese_translation_with_the_same_placeholders() -> None:
    messages = [m for m in catalog("zh") if m.id]
    assert len(messages) > 150
    for message in messages:
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(strings), f"untranslated: {ids[0]!r}"
        assert not message.fuzzy, f"fuzzy: {ids[0]!r}"
        expected = set(PLACEHOLDER.findall(ids[-1]))
        for text in strings:
            assert set(PLACEHOLDER.findall(text)) == expected, (ids[0], text)


def test_both_catalogs_carry_the_same_messages_as_the_template(tmp_path: Path) -> None:
    pot = tmp_path / "messages.pot"
    subprocess.run(
        [str(Path(sys.executable).parent / "pybabel"), "extract", "-F", str(TRANSLATIONS / "babel.cfg"),
         "-k", "lazy_gettext", "-k", "_l", "-o", str(pot), "--no-location", "."],
        cwd=TRANSLATIONS.parent.parent, check=True, capture_output=True,
    )
    with pot.open("rb") as fh:
        extracted = {m.id for m in read_po(fh) if m.id}
    for lang in ("zh", "en"):
        assert {m.id for m in catalog(lang) if m.id} == extracted, f"{lang}: run `make translations`"


def test_templates_translate_in_the_request_language_and_follow_force_locale(shared: World) -> None:
    """A page and a macro called without a template context (as the 待办 rows are) use the request's
    catalog, looked up once per request, and ``force_locale`` still switches both."""
    app = shared.app
    page = '{{ _("Handle") }}|{{ ngettext("%(num)d task in all", "%(num)d tasks in all", 2) }}'
    macro = "{% macro row() %}" + page + "{% endmacro %}"
    with app.test_request_context("/inbox"):
        row = app.jinja_env.from_string(macro).module.row
        assert render_template_string(page) == row() == "办理|共 2 件"
        with force_locale("en"):
            assert render_template_string(page) == row() == "Handle|2 tasks in all"
        assert render_template_string(page) == row() == "办理|共 2 件"
