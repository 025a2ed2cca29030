"""The documents of zone creation (seed §五): the 联合请示, the 考察评估意见表 and the 批复.

Each builder is a pure function of (case data, 成文日期, 发文字号), so the same data gives the same document.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from engine.document_data import (
    NUMERALS,
    PROVINCE_ORG,
    PROVINCE_SA,
    SCHEME,
    SCORE_ITEMS,
    VETOES,
    ZONE,
    county_bodies,
    iso_day,
    need,
    number_text,
    paragraphs,
    partner_names,
    society_names,
)
from engine.gongwen import Annex, GongWen, Para, Table, cn_date
from engine.typeset import Cell

ATTACHMENTS = ("主要目标任务及拟合作学会", "{county}创建示范区（县）调研报告", "创新驱动助力示范区（县）创建推荐表")
FORM_WIDTHS = (0.2, 0.3, 0.2, 0.3)


def _label(text: str, span: int = 1) -> Cell:
    return Cell(text, span=span, face="hei")


def _centred(text: object) -> Cell:
    return Cell(str(text), align="center")


def _goals_annex(data: dict[str, Any], county: str) -> Annex:
    """附件1 of the 联合请示: the goals, the societies asked for and the county's funding pledge."""
    rows = [(_centred("序号"), _centred("意向省级学会"), _centred("合作方向"))]
    for index, item in enumerate(data.get("joint_society_directions") or [], start=1):
        code = item.get("society", "")
        name = society_names().get(code, code) or "（待定）"
        rows.append((_centred(index), Cell(name), Cell(item.get("direction", ""))))
    funding = number_text(data.get("joint_county_funding", 0))
    return Annex(
        "附件1",
        ATTACHMENTS[0],
        (
            Para("一、主要目标任务", "h1"),
            *(Para(p) for p in paragraphs(need(data, "joint_goals", "联合请示"))),
            Para("二、拟合作省级学会", "h1"),
            Table((0.12, 0.44, 0.44), tuple(rows)),
            Para("三、经费保障", "h1"),
            Para(f"{county}每年安排县级配套经费{funding}万元，专项用于示范区（县）创建工作。"),
        ),
    )


def joint_request(data: dict[str, Any], issued_on: date, document_no: str) -> GongWen:
    """联合请示: 市科协 with 县委 and 县政府 to 省科协; 上行文 with every body's 签发人, ending 妥否，请批示。"""
    kind = "联合请示"
    county = need(data, "county_name", kind)
    bodies = county_bodies(data)
    text = [p for p in paragraphs(need(data, "joint_body", kind)) if p.rstrip("。") != "妥否，请批示"]
    signers = [data.get(k) for k in ("joint_issuer", "cosign_party_signer", "cosign_gov_signer") if data.get(k)]
    contact = data.get("joint_contact_person"), data.get("joint_contact_phone")
    urgency = data.get("joint_urgency")
    return GongWen(
        issuers=tuple(bodies),
        document_no=document_no,
        title=need(data, "joint_title", kind),
        recipient=data.get("joint_recipient") or PROVINCE_SA,
        blocks=(*(Para(p) for p in text), Para("妥否，请批示。")),
        signatories=tuple(bodies),
        issued_on=issued_on,
        upward=True,
        signers=tuple(signers),
        urgency=urgency if urgency not in (None, "平件") else None,
        attachments=tuple(name.format(county=county) for name in ATTACHMENTS),
        annexes=(_goals_annex(data, county),),
        note=f"联系人：{contact[0]}，联系电话：{contact[1]}" if all(contact) else None,
        copies_to=(f"中共{data.get('city_name', '')}委组织部",),
        printer=f"{bodies[0]}办公室",
        keywords=(kind, county),
    )


def approval(data: dict[str, Any], issued_on: date, document_no: str) -> GongWen:
    """批复 of 省科协: the three-year term and the partner societies; 抄送 省委组织部 and the city's 组织部."""
    kind = "批复"
    county, city = need(data, "county_name", kind), need(data, "city_name", kind)
    term = need(data, "approval", kind)
    partners = partner_names(data)
    request = ""
    if data.get("joint_title"):
        request = f"你们《{data['joint_title']}》（{data.get('joint_document_no', '')}）收悉。"
    scores = ""
    if "avg_score" in data:
        scores = f"（平均得分{number_text(data['avg_score'])}分，评估建议：{data.get('recommendation', '')}）"
    start, end = cn_date(iso_day(term["term_start"])), cn_date(iso_day(term["term_end"]))
    blocks = [
        Para(f"{request}经组织省级学会考察评估{scores}，并经研究，现批复如下："),
        Para(f"一、同意{county}创建“{ZONE}”。创建期为三年，自{start}至{end}。"),
    ]
    if partners:
        blocks.append(
            Para(
                f"二、确定{'、'.join(partners)}为{county}示范区（县）对接省级学会，与你们建立长期战略合作关系，"
                "围绕主导产业开展科技成果转化、科技攻关、技术咨询、人才培养等服务。"
            )
        )
    blocks += [
        Para(
            f"{NUMERALS[len(blocks) - 1]}、请你们按照{SCHEME}要求，成立示范区（县）工作领导小组及办公室，"
            "制定工作计划，落实县级配套经费，将创建工作纳入市委、县委组织部人才工作重点推动，每年报送年度工作总结。"
            "省科协将会同省委组织部开展年度考核，创建期满组织验收。"
        ),
        Para("此复。"),
    ]
    return GongWen(
        issuers=(PROVINCE_SA,),
        document_no=document_no,
        title=f"关于同意{county}创建{ZONE}的批复",
        recipient="、".join(county_bodies(data)),
        blocks=tuple(blocks),
        signatories=(PROVINCE_SA,),
        issued_on=issued_on,
        copies_to=(PROVINCE_ORG, f"中共{city}委组织部", *partners),
        printer=f"{PROVINCE_SA}办公室",
        keywords=(kind, county),
    )


def _expert(expert: dict[str, Any]) -> str:
    extra = "，".join(x for x in (expert.get("employer"), expert.get("title")) if x)
    return f"{expert.get('name', '')}（{extra}）" if extra else str(expert.get("name", ""))


def _sheet(evaluation: dict[str, Any]) -> Table:
    """One society's 评分表: inspection, experts, the five scored items, vetoes, opinion and conclusion."""
    experts = evaluation.get("experts") or []
    leader = next((e for e in experts if e.get("role") == "组长"), experts[0] if experts else None)
    members = "、".join(_expert(e) for e in experts if e is not leader) or "—"
    visited = cn_date(iso_day(evaluation["inspection_date"])) if evaluation.get("inspection_date") else ""
    vetoes = "、".join(label for key, label in VETOES.items() if evaluation.get(key)) or "无"
    total = sum(int(evaluation.get(key, 0)) for key, _, _ in SCORE_ITEMS)
    rows: list[tuple[Cell, ...]] = [
        (_label("考察日期"), Cell(visited), _label("专家组组长"), Cell(_expert(leader) if leader else "")),
        (_label("专家组成员"), Cell(members, span=3)),
        (Cell("评估项目", span=2, face="hei", align="center"), _centred("满分"), _centred("得分")),
        *(
            (Cell(label, span=2), _centred(full), _centred(number_text(evaluation.get(key, ""))))
            for key, label, full in SCORE_ITEMS
        ),
        (_label("合计", span=2), _centred(100), _centred(total)),
        (_label("一票否决项"), Cell(vetoes, span=3)),
    ]
    if evaluation.get("deduction_notes"):
        rows.append((_label("扣分说明"), Cell(str(evaluation["deduction_notes"]), span=3)))
    rows.append((_label("考察评估意见"), Cell(str(evaluation.get("opinion", "")), span=3)))
    rows.append((_label("评估结论"), Cell(str(evaluation.get("conclusion", "")), span=3)))
    return Table(FORM_WIDTHS, tuple(rows))


def evaluation_form(data: dict[str, Any], issued_on: date, document_no: str) -> GongWen:
    """考察评估意见表: a table per society's score sheet, then the average and the recommendation."""
    kind = "考察评估意见表"
    county, city = need(data, "county_name", kind), data.get("city_name", "")
    sheets = sorted(need(data, "evaluations", kind), key=lambda e: str(e.get("society_code", "")))
    blocks: list[Para | Table] = [Para(f"被考察单位：{county}（{city}）", "pair", right=f"编号：{document_no}")]
    for index, sheet in enumerate(sheets):
        code = sheet.get("society_code", "")
        blocks += [Para(f"{NUMERALS[index % 10]}、{society_names().get(code, code)}", "h1"), _sheet(sheet)]
    average, lowest = number_text(data.get("avg_score", "")), number_text(data.get("min_score", ""))
    summary = (
        (_label("参评学会"), Cell(f"{len(sheets)}家"), _label("平均得分"), Cell(f"{average}分")),
        (_label("最低得分"), Cell(f"{lowest}分"), _label("一票否决"), Cell(f"{data.get('veto_count', 0)}项")),
        (_label("评估建议"), Cell(str(data.get("recommendation", "")), span=3)),
    )
    blocks += [Para(f"{NUMERALS[len(sheets) % 10]}、综合评估", "h1"), Table(FORM_WIDTHS, summary)]
    return GongWen(
        issuers=(PROVINCE_SA,),
        document_no=document_no,
        title="创新驱动助力示范区（县）考察评估意见表",
        recipient=None,
        blocks=tuple(blocks),
        signatories=(f"{PROVINCE_SA}学会学术部",),
        issued_on=issued_on,
        letterhead=False,
        keywords=(kind, county),
    )
