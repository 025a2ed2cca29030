"""Reading a case's data for its documents: names of bodies and societies, dates, numbers, paragraphs.

Names follow the seed's usage (中共辽宁省委组织部, 辽宁省科学技术协会, 中共沈阳市委组织部). Society names come
from the bundled reference data, so a document renders without a database.
"""

from __future__ import annotations

import csv
from datetime import date
from functools import lru_cache
from typing import Any

from engine.errors import InvalidInput
from engine.orgs import DATA_DIR, society_code

PROVINCE_SA = "辽宁省科学技术协会"
PROVINCE_ORG = "中共辽宁省委组织部"
APPROVAL_PREFIX = "辽科协发"
FORM_PREFIX = "辽科协评"
SCHEME = "《“创新驱动助力示范区（县）”创建工作实施方案》"
ZONE = "辽宁省创新驱动助力示范区（县）"
NUMERALS = "一二三四五六七八九十"
SCORE_ITEMS = (
    ("score_foundation", "创建基础", 25),
    ("score_demand", "需求与合作方向", 25),
    ("score_targets", "目标任务", 20),
    ("score_support", "组织与经费保障", 20),
    ("score_materials", "申报材料规范性", 10),
)
VETOES = {
    "veto_falsified": "材料弄虚作假",
    "veto_no_leading_industry": "无明确主导产业",
    "veto_no_funding": "无县级配套经费承诺",
    "veto_major_incident": "近2年发生重大安全、环保事故或违法违纪",
}


@lru_cache(maxsize=1)
def society_names() -> dict[str, str]:
    """Society code (S001…) -> name, from the bundled reference data (no database needed to render)."""
    with open(DATA_DIR / "liaoning-societies.csv", encoding="utf-8") as fh:
        return {society_code(i): row["name"] for i, row in enumerate(csv.DictReader(fh), start=1)}


def need(data: dict[str, Any], key: str, kind: str) -> Any:
    value = data.get(key)
    if value in (None, "", [], {}):
        raise InvalidInput(f"the case data has no {key!r}, which a {kind} needs", {key: "missing"})
    return value


def iso_day(value: Any) -> date:
    return date.fromisoformat(str(value)[:10])


def number_text(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def paragraphs(text: str) -> list[str]:
    return [line.strip() for line in str(text).replace("\r", "").split("\n") if line.strip()]


def partner_names(data: dict[str, Any]) -> list[str]:
    for key in ("province_partner_societies", "term_partner_societies", "partner_societies", "assigned_societies"):
        if data.get(key):
            return [society_names().get(code, code) for code in data[key]]
    return []


def county_bodies(data: dict[str, Any]) -> list[str]:
    """The bodies that sent the 联合请示 (主办机关 first): as typed in the request, else the usual three."""
    named = [b["name"] for b in data.get("joint_cosigning_bodies") or [] if isinstance(b, dict) and b.get("name")]
    county, city = data.get("county_name", ""), data.get("city_name", "")
    return named or [f"{city}科学技术协会", f"中共{county}委员会", f"{county}人民政府"]


def zone_recipients(data: dict[str, Any]) -> str:
    county, city = data.get("county_name", ""), data.get("city_name", "")
    return f"中共{city}委组织部、{city}科学技术协会，中共{county}委员会、{county}人民政府"
