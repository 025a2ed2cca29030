"""Helpers for the document tests: a zone_creation case driven to its 批复 with realistic data (the
co-signing bodies and signers of a real 联合请示, named experts), and reading and keeping PDFs.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pypdf import PdfReader

from tests.support.scenario import Scenario
from tests.support.zone import GOOD, evaluate, fill, start

START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # the clock of tests/conftest.py: 09:00 in Shenyang
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "documents"
JOINT_NO = "沈科协发〔2026〕8号"
BODIES = ["沈阳市科学技术协会", "中共新民市委员会", "新民市人民政府"]
JOINT = {
    "joint_title": "关于申请创建辽宁省创新驱动助力示范区（县）的请示",
    "joint_document_no": JOINT_NO,
    "joint_issuer": "王建国",
    "joint_cosigning_bodies": [
        {"name": BODIES[0], "kind": "市科协"},
        {"name": BODIES[1], "kind": "县（市、区）委"},
        {"name": BODIES[2], "kind": "县（市、区）政府"},
    ],
    "joint_body": (
        "为深入贯彻落实《辽宁省人才服务全面振兴三年行动计划（2018-2020年）》，推动新民市县域经济高质量发展，"
        "经市委组织部同意，沈阳市科协与中共新民市委、新民市人民政府联合申请创建辽宁省创新驱动助力示范区（县）。\n"
        "新民市是全国商品粮基地和设施农业大县，规上工业企业126家，高新技术企业38家，主导产业为农产品精深加工、"
        "装备制造和新材料。近年来，新民市围绕主导产业开展企业科技需求调研，梳理出技术需求42项、拟合作项目15个。\n"
        "新民市委、市政府将示范区创建工作纳入县委人才工作目标责任制考核，成立创建工作领导小组，每年安排县级配套经费100万元。"
    ),
    "joint_goals": (
        "力争通过三年努力，对接省级学会6家以上，建立学会服务站4个、院士专家工作站1个，服务企业30家，"
        "解决技术难题20项，转化科技成果8项，培训各类人才800人次。"
    ),
    "joint_society_directions": [
        {"society": "S016", "direction": "成果转移转化"},
        {"society": "S001", "direction": "科技攻关"},
    ],
    "joint_county_funding": 100,
    "joint_contact_person": "张丽",
    "joint_contact_phone": "024-87654321",
}
EXPERTS = [
    {"name": "刘海涛", "employer": "东北大学", "title": "教授", "role": "组长"},
    {"name": "陈静", "employer": "沈阳农业大学", "title": "研究员", "role": "成员"},
]


def drive_to_approval(case: Scenario, county: str = "210181") -> Any:
    """A zone_creation case from 推荐 to 批复, with the 联合请示 a real one would carry."""
    start(case, county)
    case.complete("shenyang_sa", "recommend", fill("recommend"))
    case.complete("shenyang_talent", "talent_cosign", fill("talent_cosign", talent_decision="同意"))
    case.complete("xinmin_party", "research_report", fill("research_report"))
    case.complete("shenyang_org", "org_consent", fill("org_consent", consent_decision="同意"))
    case.complete("shenyang_sa", "joint_request", fill("joint_request", **JOINT))
    cosign = fill("joint_cosign", cosign_decision="同意", cosign_party_signer="李明", cosign_gov_signer="赵志强")
    case.complete("xinmin_gov", "joint_cosign", cosign)
    evaluate(case, {"S001": {**GOOD, "experts": EXPERTS}, "S016": {**GOOD, "experts": EXPERTS[::-1]}})
    decision = fill("province_decision", province_decision="批准", province_partner_societies=["S016", "S001"])
    return case.complete("province_office", "province_decision", decision)


def pdf_text(pdf: bytes) -> str:
    """The text of every page, without the whitespace that line breaks and justification put in."""
    reader = PdfReader(io.BytesIO(pdf))
    return "".join("".join(page.extract_text().split()) for page in reader.pages)


def page_count(pdf: bytes) -> int:
    return len(PdfReader(io.BytesIO(pdf)).pages)


def save_pages(name: str, pdf: bytes) -> list[Path]:
    """Keep the PDF and its pages as PNGs (pdftoppm, 60 dpi) for a person to look at."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    target = ARTIFACTS / f"{name}.pdf"
    target.write_bytes(pdf)
    if shutil.which("pdftoppm") is None:
        return []
    for old in ARTIFACTS.glob(f"{name}-*.png"):
        old.unlink()
    subprocess.run(["pdftoppm", "-png", "-r", "60", str(target), str(ARTIFACTS / name)], check=True, timeout=60)
    return sorted(ARTIFACTS.glob(f"{name}-*.png"))
