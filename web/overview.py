"""Blueprint ``overview``: the programme overview for 省科协, 省委组织部 and auditors — every zone, the
province's count against the 10–15 target, grades by year (an SVG chart drawn here), zones grouped
by city, the Excel export — and the 申报批次 panel, where 省科协 opens a batch.

Who may see it and who may open a batch is decided by ``engine.overview.build_overview`` and
``engine.batches.open_batch``; the page only hides the form from those who would be refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required

from engine.batches import QUOTA_RANGE, open_batch
from engine.errors import Conflict, InvalidInput, PermissionDenied
from engine.overview import Overview, build_overview, overview_workbook
from engine.programme import FIGURE_KEYS
from web.auth import current_actor
from web.db import get_engine, get_session, write
from web.i18n import TIMEZONE

bp = Blueprint("overview", __name__)

STATUS_CLASSES = {
    "申报中": "applying",
    "考察中": "inspecting",
    "已批复": "approved",
    "运行中": "running",
    "整改中": "rectifying",
    "已撤销": "revoked",
    "期满通过": "passed",
    "期满不通过": "failed",
    "未批准": "rejected",
}
ZONE_STATUS_LABELS = {
    "申报中": _l("Applying"),
    "考察中": _l("Under inspection"),
    "已批复": _l("Approved"),
    "运行中": _l("In operation"),
    "整改中": _l("Under rectification"),
    "已撤销": _l("Title revoked"),
    "期满通过": _l("Term passed"),
    "期满不通过": _l("Term not passed"),
    "未批准": _l("Not approved"),
}
GRADES = ("优秀", "良好", "合格", "不合格")
GRADE_LABELS = {"优秀": _l("Excellent"), "良好": _l("Good"), "合格": _l("Pass"), "不合格": _l("Fail")}
GRADE_COLOURS = {"优秀": "#2e7d32", "良好": "#1565c0", "合格": "#b26a00", "不合格": "#b3261e"}
FIGURE_LABELS = {
    "projects_total": _l("Projects"),
    "projects_completed": _l("Projects completed"),
    "problems_solved": _l("Problems solved"),
    "achievements_transferred": _l("Achievements transferred"),
    "patents": _l("Patents"),
    "people_trained": _l("People trained"),
    "contract_value": _l("Contract value"),
    "stations": _l("Service stations"),
    "experts_resident": _l("Resident experts"),
    "subsidy_amount": _l("Subsidy amount"),
}

# The grade chart's geometry (SVG user units).
CHART_W, CHART_H, PAD_L, PAD_B, PAD_T = 560, 240, 36, 34, 14


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    colour: str
    grade: str
    count: int


@bp.app_template_filter("zone_status")
def zone_status_label(status: str) -> str:
    return str(ZONE_STATUS_LABELS.get(status, status))


@bp.app_template_filter("grade")
def grade_label(grade: str) -> str:
    return str(GRADE_LABELS.get(grade, grade))


def figure_list(figures: dict[str, float]) -> list[tuple[str, str]]:
    """A zone's non-zero indicator figures, labelled, in the programme's order."""
    order = {key: index for index, key in enumerate(FIGURE_KEYS)}
    keys = sorted((k for k, v in figures.items() if v), key=lambda k: (order.get(k, len(order)), k))
    return [(str(FIGURE_LABELS.get(k, k)), f"{figures[k]:g}") for k in keys]


def grade_chart(table: dict[str, dict[str, int]]) -> dict[str, Any]:
    """Grouped bars: for each term year, one bar per grade, to scale."""
    years = sorted(table, key=lambda y: (len(y), y))
    grades = [*GRADES, *sorted({g for row in table.values() for g in row} - set(GRADES))]
    top = max([count for row in table.values() for count in row.values()] or [1])
    ticks = sorted({0, top, *(range(0, top + 1, max(1, -(-top // 4))))})
    plot_w, plot_h = CHART_W - PAD_L - 8, CHART_H - PAD_B - PAD_T
    group_w = plot_w / max(len(years), 1)
    bar_w = min(32.0, group_w * 0.8 / len(grades))
    groups = []
    for index, year in enumerate(years):
        left = PAD_L + index * group_w + (group_w - bar_w * len(grades)) / 2
        bars = []
        for position, grade in enumerate(grades):
            count = table[year].get(grade, 0)
            height = plot_h * count / top
            bars.append(
                Bar(
                    round(left + position * bar_w, 1),
                    round(PAD_T + plot_h - height, 1),
                    round(bar_w - 2, 1),
                    round(height, 1),
                    GRADE_COLOURS.get(grade, "#5f6b7a"),
                    grade,
                    count,
                )
            )
        groups.append({"year": year, "centre": round(PAD_L + (index + 0.5) * group_w, 1), "bars": bars})
    return {
        "width": CHART_W,
        "height": CHART_H,
        "left": PAD_L,
        "base": PAD_T + plot_h,
        "right": CHART_W - 8,
        "ticks": [{"value": t, "y": round(PAD_T + plot_h - plot_h * t / top, 1)} for t in ticks],
        "groups": groups,
        "grades": [(g, GRADE_COLOURS.get(g, "#5f6b7a")) for g in grades],
    }


def target_gauge(overview: Overview) -> dict[str, Any]:
    low, high = overview.target
    scale = max(high + 3, overview.approved + 1)
    width = 560

    def x(value: float) -> float:
        return round(value / scale * width, 1)

    return {"width": width, "low": low, "high": high, "approved": overview.approved,
            "x_low": x(low), "x_high": x(high), "x_value": x(overview.approved),
            "within": low <= overview.approved <= high, "scale": scale}


def _today() -> date:
    return get_engine().now().astimezone(ZoneInfo(TIMEZONE)).date()


def _render(values: dict[str, str] | None = None, errors: dict[str, str] | None = None, status: int = 200):  # noqa: ANN202
    actor = current_actor()
    overview = build_overview(get_session(), actor, get_engine().now())
    today = _today()
    defaults = {"year": str(today.year), "quota": str(QUOTA_RANGE[1]), "deadline": "", "name": ""}
    page = render_template(
        "overview/index.html",
        overview=overview,
        by_status=overview.by_status(),
        cities=overview.by_city(),
        chart=grade_chart(overview.grades_by_year()),
        gauge=target_gauge(overview),
        status_classes=STATUS_CLASSES,
        zone_figures={z.county_code: figure_list(z.figures) for z in overview.zones},
        today=today,
        may_open_batch=actor.has_role("province_office"),
        quota_range=QUOTA_RANGE,
        values={**defaults, **(values or {})},
        errors=errors or {},
    )
    return page, status


@bp.route("/overview")
@login_required
def index():  # noqa: ANN201
    return _render()


@bp.route("/overview.xlsx")
@login_required
def workbook():  # noqa: ANN201
    overview = build_overview(get_session(), current_actor(), get_engine().now())
    response = Response(
        overview_workbook(overview),
        mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
    name = f"demozone-overview-{_today().isoformat()}.xlsx"
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _batch_form() -> tuple[dict[str, str], dict[str, Any], dict[str, str]]:
    values = {key: (request.form.get(key) or "").strip()[:100] for key in ("year", "quota", "deadline", "name")}
    errors: dict[str, str] = {}
    parsed: dict[str, Any] = {"name": values["name"] or None}
    for key in ("year", "quota"):
        if values[key].isdigit() and len(values[key]) <= 4:
            parsed[key] = int(values[key])
        else:
            errors[key] = _("Enter a whole number.")
    if "year" in parsed and not 2000 <= parsed["year"] <= 2100:
        errors["year"] = _("Enter a year between 2000 and 2100.")
    try:
        parsed["deadline"] = date.fromisoformat(values["deadline"])
    except ValueError:
        errors["deadline"] = _("Enter a date (YYYY-MM-DD).")
    return values, parsed, errors


@bp.route("/overview/batches", methods=["POST"])
@login_required
def new_batch():  # noqa: ANN201
    """省科协 opens a 申报批次 (the engine refuses everyone else)."""
    actor = current_actor()
    if not actor.has_role("province_office"):  # before reading the form: refused whatever was sent
        raise PermissionDenied(f"{actor.username} may not open a batch")
    values, parsed, errors = _batch_form()
    if not errors:
        try:
            with write() as session:
                batch = open_batch(
                    session, actor, parsed["year"], parsed["quota"], parsed["deadline"], get_engine().now(),
                    parsed["name"],
                )
            flash(_("The batch %(name)s is open.", name=batch.name), "success")
            return redirect(url_for("overview.index") + "#batches")
        except InvalidInput as exc:
            details = exc.details if isinstance(exc.details, dict) else {}
            if "quota" in details:
                errors["quota"] = _("The quota must be between %(low)s and %(high)s.", low=QUOTA_RANGE[0],
                                    high=QUOTA_RANGE[1])
            if "deadline" in details:
                errors["deadline"] = _("The deadline cannot be before today.")
            errors = errors or {"": _("Some fields are not filled in correctly.")}
        except Conflict:
            errors["name"] = _("A batch of this name already exists for this year.")
    return _render(values, errors, 400)
