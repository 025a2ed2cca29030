"""The documents of a zone's term: the annual 考核结果通知 and the 撤销 notice (domain-research §4.2).

Both are joint documents of 省委组织部 and 省科协, numbered in 省科协's series as in the seed (辽科协发).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from engine.document_data import (
    NUMERALS,
    PROVINCE_ORG,
    PROVINCE_SA,
    SCHEME,
    ZONE,
    iso_day,
    need,
    number_text,
    partner_names,
    zone_recipients,
)
from engine.gongwen import GongWen, Para, cn_date


def _year_result(data: dict[str, Any], year: int) -> dict[str, Any]:
    """The recorded result of 创建年度 ``year``: from ``year_results`` (zone_term), else the year's own data."""
    for result in data.get("year_results") or []:
        if int(result.get("year", 0)) == year:
            return result
    if int(data.get("term_year", 0)) != year:
        return {}
    return {
        "year": year,
        "grade": data.get("year_grade"),
        "score": data.get("year_score"),
        "failed": data.get("year_failed"),
    }


def _twice_failed(data: dict[str, Any], year: int) -> bool:
    if not _year_result(data, year).get("failed"):
        return False
    if data.get("year_results"):
        return bool(_year_result(data, year - 1).get("failed"))
    return bool(data.get("previous_failed"))  # a standalone annual_assessment case knows only this flag


def assessment_notice(data: dict[str, Any], issued_on: date, document_no: str) -> GongWen:
    kind = "考核结果通知"
    county = need(data, "county_name", kind)
    year = int(need(data, "term_year", kind))
    result = _year_result(data, year)
    grade = result.get("grade") or need(data, "year_grade", kind)
    score = number_text(result["score"]) if result.get("score") is not None else "—"
    ordinal = f"第{NUMERALS[year - 1]}个创建年度"
    period = ""
    if data.get("year_start") and data.get("year_end"):
        period = f"（{cn_date(iso_day(data['year_start']))}至{cn_date(iso_day(data['year_end']))}）"
    basis = f"（{data['approval_no']}批复创建）" if data.get("approval_no") else ""
    blocks = [
        Para(
            f"根据{SCHEME}和年度考核工作安排，省委组织部、省科协对{county}示范区（县）{basis}{ordinal}{period}"
            "创建工作进行了考核。现将考核结果通知如下："
        ),
        Para(f"{county}示范区（县）{ordinal}考核得分{score}分，考核等级为“{grade}”。"),
    ]
    if _twice_failed(data, year):
        blocks.append(Para("鉴于已连续两个创建年度考核不合格，将按规定撤销示范区（县）称号，另行发文。"))
    elif result.get("failed"):
        blocks.append(
            Para(
                "请你们认真查找问题，于90日内完成整改，并将整改报告报省科协学会学术部。"
                "整改复查仍不合格的，将撤销示范区（县）称号。"
            )
        )
    else:
        blocks.append(
            Para("希望你们再接再厉，深化与对接学会的合作，推动科技成果转移转化和人才引育，确保完成三年创建目标任务。")
        )
    return GongWen(
        issuers=(PROVINCE_ORG, PROVINCE_SA),
        document_no=document_no,
        title=f"关于{county}示范区（县）{ordinal}考核结果的通知",
        recipient=zone_recipients(data),
        blocks=tuple(blocks),
        signatories=(PROVINCE_ORG, PROVINCE_SA),
        issued_on=issued_on,
        copies_to=tuple(partner_names(data)) or ("各对接省级学会",),
        printer=f"{PROVINCE_SA}办公室",
        keywords=(kind, county, str(year)),
    )


def revocation_notice(data: dict[str, Any], issued_on: date, document_no: str) -> GongWen:
    kind = "撤销通知"
    county, city = need(data, "county_name", kind), data.get("city_name", "")
    since = f"于{cn_date(iso_day(data['term_start']))}" if data.get("term_start") else ""
    basis = f"经{data['approval_no']}批复" if data.get("approval_no") else ""
    grades = "、".join(
        f"第{NUMERALS[int(r['year']) - 1]}个创建年度{r.get('grade', '')}（{number_text(r.get('score', ''))}分）"
        for r in data.get("year_results") or []
    )
    reason = data.get("revoke_reason") or "考核不合格"
    results = f"（年度考核结果：{grades}）" if grades else ""
    blocks = (
        Para(f"{county}{since}{basis}创建“{ZONE}”。创建期内，该示范区（县）{reason}{results}。"),
        Para(f"根据{SCHEME}和年度考核有关规定，经研究，决定撤销{county}“{ZONE}”称号。"),
        Para(
            "自本通知印发之日起，停止对相关省级学会的示范区（县）创建经费补助，已拨付但未按规定使用的经费予以追回；"
            f"请{city}科学技术协会督促做好后续工作，巩固已开展的合作项目。"
        ),
    )
    return GongWen(
        issuers=(PROVINCE_ORG, PROVINCE_SA),
        document_no=document_no,
        title=f"关于撤销{county}“{ZONE}”称号的通知",
        recipient=zone_recipients(data),
        blocks=blocks,
        signatories=(PROVINCE_ORG, PROVINCE_SA),
        issued_on=issued_on,
        copies_to=tuple(partner_names(data)) or ("各对接省级学会",),
        printer=f"{PROVINCE_SA}办公室",
        keywords=(kind, county),
    )
