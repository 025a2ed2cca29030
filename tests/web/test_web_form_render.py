"""JSON Schema forms: the fields built from a schema and the data parsed back from a post."""

from __future__ import annotations

from werkzeug.datastructures import MultiDict

from web import create_app
from web.form_render import build_fields, display, field_errors, parse_form, unplaced_errors

SCHEMA = {
    "type": "object",
    "required": ["name", "count", "rows", "choice"],
    "properties": {
        "name": {"type": "string", "title": "名称", "maxLength": 10},
        "note": {"type": "string", "x-widget": "textarea"},
        "count": {"type": "integer", "minimum": 0},
        "ratio": {"type": "number"},
        "day": {"type": "string", "format": "date"},
        "choice": {"type": "string", "enum": ["同意", "退回"]},
        "society": {"type": "string", "enum": ["S001", "S002", "S003", "S004", "S005"],
                    "x-enum-titles": ["甲", "乙", "丙", "丁", "戊"]},
        "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b", "c"]}},
        "words": {"type": "array", "items": {"type": "string"}},
        "flag": {"type": "boolean"},
        "file": {"type": "string", "x-widget": "file"},
        "rows": {
            "type": "array", "minItems": 1,
            "items": {"type": "object", "required": ["who"],
                      "properties": {"who": {"type": "string"}, "age": {"type": "integer"},
                                     "lead": {"type": "boolean"}}},
        },
    },
}


def test_each_property_gets_its_widget() -> None:
    kinds = {f.key: f.kind for f in build_fields(SCHEMA, {}, {})}
    assert kinds == {"name": "text", "note": "textarea", "count": "integer", "ratio": "number", "day": "date",
                     "choice": "radio", "society": "select", "tags": "checkboxes", "words": "list",
                     "flag": "checkbox", "file": "file", "rows": "table"}
    society = next(f for f in build_fields(SCHEMA, {}, {}) if f.key == "society")
    assert society.options[0] == ("S001", "甲")


def test_a_post_is_typed_by_the_schema() -> None:
    form = MultiDict([
        ("f.name", " 新民 "), ("f.note", "第一行\n"), ("f.count", "12"), ("f.ratio", "2.5"), ("f.day", "2026-03-02"),
        ("f.choice", "同意"), ("f.tags", "a"), ("f.tags", "c"), ("f.words.0", "x"), ("f.words.3", "y"),
        ("f.words.1", " "), ("f.flag", "true"), ("f.rows.0.who", "张三"), ("f.rows.0.age", "40"),
        ("f.rows.5.who", ""), ("f.rows.5.age", ""), ("f.rows.2.who", "李四"), ("f.rows.2.lead", "true"),
        ("f.unknown", "ignored"),
    ])
    assert parse_form(SCHEMA, form) == {
        "name": "新民", "note": "第一行\n", "count": 12, "ratio": 2.5, "day": "2026-03-02", "choice": "同意",
        "tags": ["a", "c"], "words": ["x", "y"], "flag": True,
        "rows": [{"who": "张三", "age": 40, "lead": False}, {"who": "李四", "lead": True}],
    }


def test_what_does_not_convert_is_kept_as_typed_and_blank_is_left_out() -> None:
    data = parse_form(SCHEMA, MultiDict([("f.count", "十二"), ("f.ratio", "nan"), ("f.name", "  ")]))
    assert data == {"count": "十二", "ratio": "nan", "flag": False, "rows": []}


def test_errors_land_on_their_fields_and_the_rest_is_listed() -> None:
    app = create_app({"TESTING": True, "ENGINE": object()})
    with app.test_request_context():
        data = {"name": "x" * 11, "count": -1, "rows": [{"age": 3}], "choice": "同意"}
        errors = field_errors(SCHEMA, data)
        assert set(errors) == {"name", "count", "rows/0/who"}
        errors[""] = "整体错误"
        fields = build_fields(SCHEMA, data, errors)
        assert next(f for f in fields if f.key == "name").error == "最多 10 个字。"
        table = next(f for f in fields if f.key == "rows")
        assert table.rows[0][0].error == "此项为必填项。"
        assert unplaced_errors(fields, errors) == {"": "整体错误"}
        assert display(SCHEMA["properties"]["society"], "S002") == "乙"
        assert display({"type": "boolean"}, True) == "是"
