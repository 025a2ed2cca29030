"""The registry of document kinds: how each is built, which series numbers it, and what tells two apart."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from engine.document_data import APPROVAL_PREFIX, FORM_PREFIX, PROVINCE_SA, county_bodies
from engine.documents_creation import approval, evaluation_form, joint_request
from engine.documents_term import assessment_notice, revocation_notice
from engine.gongwen import GongWen


def _none(data: dict[str, Any]) -> None:
    return None


def _province(data: dict[str, Any]) -> str:
    return PROVINCE_SA


@dataclass(frozen=True)
class Kind:
    """How one kind of document is built, numbered and told apart from others of its kind on a case."""

    name: str
    build: Callable[[dict[str, Any], date, str], GongWen]
    applies: Callable[[dict[str, Any]], bool]  # the case data holds what the document needs
    issuer: Callable[[dict[str, Any]], str] = _province  # the body whose series numbers it
    prefix: Callable[[dict[str, Any]], str] = lambda data: APPROVAL_PREFIX  # that series, e.g. 辽科协发
    number_in_data: Callable[[dict[str, Any]], str | None] = _none  # a 文号 the process already assigned
    date_in_data: Callable[[dict[str, Any]], Any] = _none  # a 成文日期 the process already fixed
    variant: Callable[[dict[str, Any]], str] = lambda data: ""  # several of this kind on one case
    # The 文号 is typed by the sender from a series the platform does not keep (the city's own 发文字号), so
    # the platform cannot promise it is unique: two cases may carry the same one, and neither may be blocked.
    outside_series: bool = False


def _city_prefix(data: dict[str, Any]) -> str:
    city = str(data.get("city_name", "")).removesuffix("市")
    return f"{city[:2] if city.startswith('辽') else city[:1]}科协发"  # 沈科协发; 辽阳 keeps both characters


def _evaluation_round(data: dict[str, Any]) -> str:
    # A 退回补充 sends the case through a second round of evaluations, which gets its own 意见表.
    sheets = json.dumps(data.get("evaluations"), sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(sheets.encode()).hexdigest()[:12]


def _approval(data: dict[str, Any]) -> dict[str, Any]:
    return data.get("approval") if isinstance(data.get("approval"), dict) else {}


KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind(
            "联合请示",
            joint_request,
            applies=lambda d: bool(d.get("joint_title") and d.get("joint_body")),
            issuer=lambda d: county_bodies(d)[0],
            prefix=_city_prefix,
            number_in_data=lambda d: d.get("joint_document_no"),
            date_in_data=lambda d: d.get("joint_date"),
            variant=lambda d: str(d.get("joint_document_no") or ""),  # a redraft after 退回 has a new 文号
            outside_series=True,
        ),
        Kind(
            "考察评估意见表",
            evaluation_form,
            applies=lambda d: bool(d.get("evaluations")),
            prefix=lambda d: FORM_PREFIX,
            variant=_evaluation_round,
        ),
        Kind(
            "批复",
            approval,
            applies=lambda d: bool(_approval(d).get("approval_no")),
            number_in_data=lambda d: _approval(d).get("approval_no"),
            date_in_data=lambda d: _approval(d).get("approval_date"),
        ),
        Kind(
            "考核结果通知",
            assessment_notice,
            applies=lambda d: bool(d.get("term_year") and d.get("year_grade")),
            variant=lambda d: f"第{int(d['term_year'])}年度",
        ),
        Kind(
            "撤销通知",
            revocation_notice,
            applies=lambda d: isinstance(d.get("revocation"), dict) and bool(d["revocation"].get("document_no")),
            number_in_data=lambda d: d["revocation"]["document_no"],
        ),
    )
}
