"""JSON Schema forms: schema -> field specs for the templates, posted form -> typed data, and
localized per-field error messages.

Input names are ``f.<field>``, ``f.<field>.<row>.<column>`` for table cells and ``f.<field>.<row>`` for
repeatable text rows; an upload for a file field arrives as ``file.<field>``. Error keys are the
engine's paths (``field``, ``field/0/column``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from flask_babel import gettext as _
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError
from werkzeug.datastructures import MultiDict

from engine.forms import field_examples

PREFIX = "f."
FILE_PREFIX = "file."
_INT = re.compile(r"^[+-]?\d+$")
_FORMAT_CHECKER = FormatChecker()
RADIO_MAX = 4


@dataclass
class Field:
    key: str  # property name (a column name inside a table)
    path: str  # error path: "field" or "field/0/column"
    name: str  # HTML input name
    kind: str  # text textarea integer number date select radio checkboxes checkbox table list file
    title: str
    description: str = ""
    required: bool = False
    value: Any = None
    error: str | None = None
    options: list[tuple[str, str]] = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)
    columns: list[Field] = field(default_factory=list)  # table: one template field per column
    rows: list[list[Field]] = field(default_factory=list)  # table: cells; list: one field per row
    template: list[Field] = field(default_factory=list)  # an empty row, for the add-row button

    @property
    def selected(self) -> set[str]:
        values = self.value if isinstance(self.value, list) else [self.value]
        return {str(v) for v in values if v is not None}


def _options(schema: dict[str, Any]) -> list[tuple[str, str]]:
    values = schema.get("enum", [])
    titles = schema.get("x-enum-titles") or []
    return [(str(v), str(titles[i]) if i < len(titles) else str(v)) for i, v in enumerate(values)]


def widget_kind(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if kind == "array":
        items = schema.get("items", {})
        if "enum" in items:
            return "checkboxes"
        return "table" if items.get("type") == "object" else "list"
    if "enum" in schema:
        return "radio" if len(schema["enum"]) <= RADIO_MAX else "select"
    if kind == "boolean":
        return "checkbox"
    if kind in ("integer", "number"):
        return kind
    if schema.get("x-widget") in ("textarea", "file"):
        return schema["x-widget"]
    if schema.get("format") == "date":
        return "date"
    return "text"


def _attrs(schema: dict[str, Any], kind: str) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    if kind in ("integer", "number"):
        for key, attr in (("minimum", "min"), ("maximum", "max")):
            if key in schema:
                attrs[attr] = schema[key]
        attrs["step"] = "1" if kind == "integer" else "any"
    if kind in ("text", "textarea") and "maxLength" in schema:
        attrs["maxlength"] = schema["maxLength"]
    examples = field_examples(schema)
    if kind == "text" and examples:
        attrs["placeholder"] = _("e.g. %(example)s", example=examples[0])
    return attrs


def _field(key: str, schema: dict[str, Any], path: str, name: str, required: bool, value: Any, errors: dict) -> Field:
    kind = widget_kind(schema)
    spec = Field(
        key=key,
        path=path,
        name=name,
        kind=kind,
        title=str(schema.get("title") or key),
        description=str(schema.get("description") or ""),
        required=required,
        value=value,
        error=errors.get(path),
        attrs=_attrs(schema, kind),
    )
    if kind in ("select", "radio"):
        spec.options = _options(schema)
    elif kind == "checkboxes":
        spec.options = _options(schema.get("items", {}))
    elif kind == "table":
        items = schema.get("items", {})
        required_columns = set(items.get("required", []))
        columns = items.get("properties", {})
        rows = value if isinstance(value, list) else []
        count = max(len(rows), schema.get("minItems", 0), 1 if not rows else 0)

        def cells(index: int, row: Any) -> list[Field]:
            row = row if isinstance(row, dict) else {}
            return [
                _field(
                    col,
                    sub,
                    f"{path}/{index}/{col}",
                    f"{name}.{index}.{col}",
                    col in required_columns,
                    row.get(col),
                    errors,
                )
                for col, sub in columns.items()
            ]

        spec.rows = [cells(i, rows[i] if i < len(rows) else {}) for i in range(count)]
        spec.template = cells(-1, {})
        spec.columns = spec.template
        spec.attrs = {"min_rows": schema.get("minItems", 0), "max_rows": schema.get("maxItems", 200)}
    elif kind == "list":
        items = schema.get("items", {"type": "string"})
        rows = value if isinstance(value, list) else []
        count = max(len(rows), schema.get("minItems", 0), 1 if not rows else 0)
        spec.rows = [
            [_field(key, items, f"{path}/{i}", f"{name}.{i}", True, rows[i] if i < len(rows) else None, errors)]
            for i in range(count)
        ]
        spec.template = [_field(key, items, f"{path}/-1", f"{name}.-1", True, None, {})]
        spec.attrs = {"min_rows": schema.get("minItems", 0), "max_rows": schema.get("maxItems", 200)}
    return spec


def build_fields(schema: dict[str, Any], values: dict[str, Any], errors: dict[str, str]) -> list[Field]:
    """Field specs for each property of ``schema``, filled with ``values`` and their ``errors``."""
    required = set(schema.get("required", []))
    return [
        _field(key, sub, key, PREFIX + key, key in required, values.get(key), errors)
        for key, sub in schema.get("properties", {}).items()
        if isinstance(sub, dict)
    ]


def unplaced_errors(fields: list[Field], errors: dict[str, str]) -> dict[str, str]:
    """Errors that no field shows (form-level ones, or rows that are not on the page)."""
    placed: set[str] = set()

    def visit(spec: Field) -> None:
        placed.add(spec.path)
        for row in spec.rows:
            for cell in row:
                visit(cell)

    for spec in fields:
        visit(spec)
    return {path: message for path, message in errors.items() if path not in placed}


# -- parsing ---------------------------------------------------------------------------------------


def _scalar(schema: dict[str, Any], raw: str | None) -> Any:
    """The typed value of one input; a value that does not convert is kept as typed (the validator
    then names the problem and the page shows the input again); blank is None (left out)."""
    if raw is None:
        return None
    kind = schema.get("type")
    text = raw if schema.get("x-widget") == "textarea" else raw.strip()
    if text == "" or (not text.strip() and kind != "string"):
        return None
    if "enum" in schema and kind != "string":
        for option in schema["enum"]:
            if str(option) == text:
                return option
    if kind == "integer":
        return int(text) if _INT.match(text) and len(text) < 20 else text
    if kind == "number":
        if _INT.match(text) and len(text) < 20:
            return int(text)
        try:
            number = float(text)
        except ValueError:
            return text
        return number if math.isfinite(number) else text
    if kind == "boolean":
        return text.lower() in ("on", "true", "1", "yes")
    return text


def _rows(form: MultiDict, name: str) -> dict[int, dict[str, str]]:
    pattern = re.compile(re.escape(name) + r"\.(\d{1,4})(?:\.([A-Za-z0-9_]+))?$")
    rows: dict[int, dict[str, str]] = {}
    for key in form:
        match = pattern.match(key)
        if match:
            rows.setdefault(int(match.group(1)), {})[match.group(2) or ""] = form.get(key, "")
    return dict(sorted(rows.items()))


def _parse(key: str, schema: dict[str, Any], form: MultiDict, name: str) -> Any:
    kind = widget_kind(schema)
    if kind == "checkbox":
        return _scalar(schema, form.get(name, "false"))
    if kind == "checkboxes":
        items = schema.get("items", {})
        values = [_scalar(items, v) for v in form.getlist(name)]
        return [v for v in values if v is not None]
    if kind == "table":
        items = schema.get("items", {})
        columns = items.get("properties", {})
        parsed = []
        for cells in _rows(form, name).values():
            if not any((cells.get(col) or "").strip() for col in columns if widget_kind(columns[col]) != "checkbox"):
                continue  # an empty row: left out
            row = {}
            for col, sub in columns.items():
                if widget_kind(sub) == "checkbox":
                    row[col] = _scalar(sub, cells.get(col, "false"))
                    continue
                value = _scalar(sub, cells.get(col))
                if value is not None:
                    row[col] = value
            parsed.append(row)
        return parsed
    if kind == "list":
        items = schema.get("items", {"type": "string"})
        values = [_scalar(items, cells.get("")) for cells in _rows(form, name).values()]
        return [v for v in values if v is not None]
    return _scalar(schema, form.get(name))


def parse_form(schema: dict[str, Any], form: MultiDict) -> dict[str, Any]:
    """The data of a posted form, typed by ``schema``; blank optional fields are left out.

    A list left empty stays out when it was not on the form at all, and is ``[]`` otherwise, so that
    "at least one" is reported against the list.
    """
    data: dict[str, Any] = {}
    for key, sub in schema.get("properties", {}).items():
        if not isinstance(sub, dict):
            continue
        value = _parse(key, sub, form, PREFIX + key)
        if value is None or (value == [] and key not in schema.get("required", [])):
            continue
        data[key] = value
    return data


def file_fields(schema: dict[str, Any]) -> list[str]:
    return [
        key for key, sub in schema.get("properties", {}).items() if isinstance(sub, dict) and widget_kind(sub) == "file"
    ]


# -- messages --------------------------------------------------------------------------------------


def _not_valid(error: ValidationError) -> str:
    """The format message, with the field's JSON Schema ``examples`` when it has them."""
    examples = field_examples(error.schema)
    if examples:
        return _("The format is not valid, for example: %(examples)s.", examples=" / ".join(examples))
    return _("The format is not valid.")


def _message(error: ValidationError) -> str:
    v = error.validator_value
    validator = error.validator
    if validator == "required":
        return _("This field is required.")
    if validator == "type":
        names = {
            "string": _("text"),
            "integer": _("a whole number"),
            "number": _("a number"),
            "boolean": _("yes or no"),
            "array": _("a list"),
            "object": _("an object"),
        }
        return _("Must be %(kind)s.", kind=names.get(v, str(v)) if isinstance(v, str) else str(v))
    simple = {
        "minLength": lambda: _("Enter at least %(n)s characters.", n=v),
        "maxLength": lambda: _("Enter at most %(n)s characters.", n=v),
        "minimum": lambda: _("Must be at least %(n)s.", n=v),
        "maximum": lambda: _("Must be at most %(n)s.", n=v),
        "exclusiveMinimum": lambda: _("Must be greater than %(n)s.", n=v),
        "exclusiveMaximum": lambda: _("Must be less than %(n)s.", n=v),
        "minItems": lambda: _("Add at least %(n)s.", n=v),
        "maxItems": lambda: _("Add at most %(n)s.", n=v),
        "uniqueItems": lambda: _("Entries must not repeat."),
        "enum": lambda: _("Choose one of the options."),
        "pattern": lambda: _not_valid(error),
        "const": lambda: _("This must be confirmed.") if v is True else _("Must be %(v)s.", v=v),
        "format": lambda: _("Enter a date as YYYY-MM-DD.") if v == "date" else _not_valid(error),
        "additionalProperties": lambda: _("Contains a field that is not allowed."),
    }
    return simple[validator]() if validator in simple else error.message


def field_errors(schema: dict[str, Any], data: dict[str, Any]) -> dict[str, str]:
    """Per-field messages in the current language, keyed by the engine's error paths."""
    errors: dict[str, str] = {}
    for error in Draft202012Validator(schema, format_checker=_FORMAT_CHECKER).iter_errors(data):
        path = [str(p) for p in error.absolute_path]
        if error.validator == "required":
            missing = error.message.split("'")[1] if "'" in error.message else ""
            path = [*path, missing]
        errors.setdefault("/".join(path), _message(error))
    return errors


def localize_errors(schema: dict[str, Any], data: dict[str, Any], engine_details: Any) -> dict[str, str]:
    """The engine's per-field errors, each worded in the current language where we can."""
    details = engine_details if isinstance(engine_details, dict) else {}
    mine = field_errors(schema, data) if schema else {}
    return {str(path): mine.get(str(path), str(message)) for path, message in details.items()} or mine


# -- read-only display -----------------------------------------------------------------------------


def display(schema: dict[str, Any], value: Any) -> Any:
    """A value as a person reads it: option titles for codes, 是/否 for booleans."""
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    if "enum" in schema:
        return dict(_options(schema)).get(str(value), str(value))
    if isinstance(value, list):
        items = schema.get("items", {})
        if items.get("type") == "object":
            return value
        return "、".join(str(display(items, v)) for v in value)
    if value is None:
        return ""
    return value


@dataclass
class Shown:
    key: str
    title: str
    kind: str  # text textarea file table
    value: Any
    columns: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)


def show_data(schema: dict[str, Any], data: dict[str, Any]) -> list[Shown]:
    """The submitted data of one step, field by field, in the form's order, for the 案卷."""
    properties = schema.get("properties", {}) if schema else {}
    shown = []
    for key, value in data.items():
        sub = properties.get(key, {}) if isinstance(properties.get(key), dict) else {}
        kind = widget_kind(sub) if sub else "text"
        title = str(sub.get("title") or key)
        if kind == "table" and isinstance(value, list):
            columns = [(c, str(s.get("title") or c), s) for c, s in sub.get("items", {}).get("properties", {}).items()]
            rows = [{c: display(s, row.get(c)) for c, _t, s in columns} for row in value if isinstance(row, dict)]
            shown.append(Shown(key, title, "table", rows, columns))
        elif kind == "file":
            shown.append(Shown(key, title, "file", value))
        else:
            shown.append(Shown(key, title, "textarea" if kind == "textarea" else "text", display(sub, value)))
    order = list(properties)
    shown.sort(key=lambda s: order.index(s.key) if s.key in order else len(order))
    return shown
