"""The programme overview for 省科协 and 省委组织部: every zone, its status, term and grades.

The seed sets the target: 10–15 demonstration zones across the province (§三). The overview counts
approved and running zones against it, groups them by city, and exports a workbook.
"""

from __future__ import annotations

import io
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.access import Actor
from engine.batches import BatchView, list_batches
from engine.clock import as_utc
from engine.errors import PermissionDenied
from engine.models import Instance, OpenTask, OrgUnit, Zone

TARGET_RANGE = (10, 15)
APPROVED_STATUSES = ("已批复", "运行中", "整改中", "期满通过")
STATUS_ORDER = ("申报中", "考察中", "已批复", "运行中", "整改中", "已撤销", "期满通过", "期满不通过", "未批准")
OVERVIEW_ROLES = ("province_office", "province_org_dept", "auditor")


@dataclass
class ZoneRow:
    county_code: str
    county_name: str
    city_code: str
    city_name: str
    status: str
    approval_no: str | None
    term_start: str | None
    term_end: str | None
    grades: dict[str, str]
    overdue_tasks: int
    figures: dict[str, float] = field(default_factory=dict)


@dataclass
class Overview:
    zones: list[ZoneRow]
    batches: list[BatchView] = field(default_factory=list)
    target: tuple[int, int] = TARGET_RANGE

    @property
    def approved(self) -> int:
        return sum(1 for z in self.zones if z.status in APPROVED_STATUSES)

    def by_status(self) -> dict[str, int]:
        counts = Counter(z.status for z in self.zones)
        return {status: counts[status] for status in STATUS_ORDER if counts[status]}

    def by_city(self) -> dict[str, list[ZoneRow]]:
        grouped: dict[str, list[ZoneRow]] = defaultdict(list)
        for zone in self.zones:
            grouped[zone.city_name].append(zone)
        return dict(sorted(grouped.items()))

    def grades_by_year(self) -> dict[str, dict[str, int]]:
        table: dict[str, Counter] = defaultdict(Counter)
        for zone in self.zones:
            for year, grade in zone.grades.items():
                table[year][grade] += 1
        return {year: dict(table[year]) for year in sorted(table)}


def build_overview(session: Session, actor: Actor, now: datetime) -> Overview:
    if not any(actor.has_role(role) for role in OVERVIEW_ROLES):
        raise PermissionDenied(f"{actor.username} may not see the programme overview")
    names = dict(session.execute(select(OrgUnit.code, OrgUnit.name)).tuples().all())
    overdue = dict(
        session.execute(
            select(Instance.county_code, func.count())
            .join(OpenTask, OpenTask.instance_id == Instance.id)
            .where(OpenTask.due_at < as_utc(now))
            .group_by(Instance.county_code)
        )
        .tuples()
        .all()
    )
    rows = [
        ZoneRow(
            zone.county_code,
            names.get(zone.county_code, zone.county_code),
            zone.city_code,
            names.get(zone.city_code, zone.city_code),
            zone.status,
            zone.approval_no,
            zone.term_start,
            zone.term_end,
            dict(sorted((zone.grades or {}).items())),
            overdue.get(zone.county_code, 0),
            _figures(session, zone.county_code),
        )
        for zone in session.scalars(select(Zone).order_by(Zone.city_code, Zone.county_code))
    ]
    return Overview(rows, list_batches(session))


def _figures(session: Session, county_code: str) -> dict[str, float]:
    totals: Counter = Counter()
    results = session.scalars(
        select(Instance.result).where(
            Instance.county_code == county_code,
            Instance.status == "completed",
            Instance.process_id.in_(("project_matching", "service_station", "subsidy")),
        )
    )
    for result in results:
        for key, value in (result or {}).items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                totals[key] += value
    return dict(totals)


def overview_workbook(overview: Overview) -> bytes:
    """The overview as an .xlsx workbook: one sheet of zones, one of indicator figures."""
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "示范区一览"
    sheet.append(
        [
            "市",
            "县（市、区）/园区",
            "代码",
            "状态",
            "批复文号",
            "期限起",
            "期限止",
            "第一年",
            "第二年",
            "第三年",
            "逾期待办",
        ]
    )
    for zone in overview.zones:
        sheet.append(
            [
                zone.city_name,
                zone.county_name,
                zone.county_code,
                zone.status,
                zone.approval_no,
                zone.term_start,
                zone.term_end,
                *(zone.grades.get(str(y), "") for y in (1, 2, 3)),
                zone.overdue_tasks,
            ]
        )
    figures = book.create_sheet("指标数据")
    keys = sorted({key for zone in overview.zones for key in zone.figures})
    figures.append(["县（市、区）/园区", *keys])
    for zone in overview.zones:
        figures.append([zone.county_name, *(zone.figures.get(key, 0) for key in keys)])
    summary = book.create_sheet("汇总")
    summary.append(["目标", f"{overview.target[0]}–{overview.target[1]} 个"])
    summary.append(["已批复（含运行、整改、期满通过）", overview.approved])
    for status, count in overview.by_status().items():
        summary.append([status, count])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def overview_dict(overview: Overview) -> dict[str, Any]:
    return {
        "target": list(overview.target),
        "approved": overview.approved,
        "by_status": overview.by_status(),
        "grades_by_year": overview.grades_by_year(),
        "zones": [zone.__dict__ for zone in overview.zones],
        "batches": [
            {**b.__dict__, "opens_on": b.opens_on.isoformat(), "deadline": b.deadline.isoformat()}
            for b in overview.batches
        ],
    }
