"""The programme overview (every zone, the 10–15 target, grades by year, zones by city, Excel) and the
申报批次 panel, seen by 省科协, 省委组织部 and auditors only; only 省科协 opens a batch."""

from __future__ import annotations

import io
import re
from datetime import date

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from engine.db import write_session
from engine.models import Batch, Instance, Zone
from tests.conftest import START
from tests.web.conftest import World, signed_in

VIEWERS = ("province_office", "province_org", "auditor")
OTHERS = ("shenyang_sa", "xinmin_party", "dalian_sa", "s001", "designer", "admin")
ZONES = (  # county, city, status, term start, grades by term year
    ("210124", "210100", "运行中", "2023-03-01", {"1": "优秀", "2": "良好"}),
    ("210102", "210100", "整改中", "2023-03-01", {"1": "合格", "2": "不合格"}),
    ("210214", "210200", "期满通过", "2022-03-01", {"1": "良好", "2": "良好", "3": "优秀"}),
    ("210283", "210200", "已撤销", "2022-03-01", {"1": "不合格", "2": "不合格"}),
)


@pytest.fixture(scope="module")
def programme(shared: World) -> World:
    """The shared database plus four zones of earlier years, with grades."""
    with write_session(shared.engine().sessions) as session:
        for county, city, status, start, grades in ZONES:
            end = f"{int(start[:4]) + 3}{start[4:]}"
            number = f"辽科协发〔{start[:4]}〕1号"
            session.merge(Zone(county_code=county, city_code=city, status=status, approval_no=number,
                               term_start=start, term_end=end, grades=grades, updated_at=START))
    return shared


@pytest.mark.parametrize("username", VIEWERS)
def test_the_overview_shows_every_zone_the_target_grades_and_cities(programme: World, username: str) -> None:
    page = signed_in(programme.app, username).get("/overview").get_data(as_text=True)
    assert "示范区总览" in page and 'href="/overview"' in page  # the page, and its link in the header
    for name in ("新民市", "瓦房店市", "法库县", "和平区", "普兰店区", "庄河市", "沈阳市", "大连市"):
        assert name in page, name
    assert "目标 10–15 个示范区" in page
    approved = re.search(r'class="big-number"><strong>(\d+)</strong>', page).group(1)
    assert approved == "3"  # 运行中, 整改中 and 期满通过 count; 已撤销 and 申报中 do not
    for status in ("运行中", "整改中", "期满通过", "已撤销", "申报中"):
        assert status in page, status
    chart = re.search(r'<svg class="chart".*?</svg>', page, re.S).group(0)
    assert "第 1 年" in chart and "第 3 年" in chart and chart.count('class="bar"') == 12  # 3 years × 4 grades
    assert "第 2 年 · 不合格: 2" in chart and "第 3 年 · 优秀: 1" in chart
    assert page.count('class="city-card"') == 2 and "zone-chip status-revoked" in page
    assert "申报批次" in page and "2026年度创新驱动助力示范区（县）申报" in page
    assert ('action="/overview/batches"' in page) == (username == "province_office")


@pytest.mark.parametrize("username", OTHERS)
def test_others_may_not_see_the_overview(shared: World, username: str) -> None:
    user = signed_in(shared.app, username)
    assert user.get("/overview").status_code == 403
    assert user.get("/overview.xlsx").status_code == 403
    assert 'href="/overview"' not in user.get("/inbox").get_data(as_text=True)
    response = user.post("/overview/batches", {"year": "2027", "quota": "12", "deadline": "2027-06-30"})
    assert response.status_code == 403


def test_the_excel_download(programme: World) -> None:
    response = signed_in(programme.app, "province_office").get("/overview.xlsx")
    assert response.status_code == 200 and response.mimetype.endswith("spreadsheetml.sheet")
    assert "attachment" in response.headers["Content-Disposition"]
    book = load_workbook(io.BytesIO(response.data))
    assert book.sheetnames == ["示范区一览", "指标数据", "汇总"]
    counties = [row[1] for row in book["示范区一览"].iter_rows(min_row=2, values_only=True)]
    assert {"新民市", "法库县", "庄河市"} <= set(counties)


def test_province_office_opens_a_batch(world: World) -> None:
    user = signed_in(world.app, "province_office")
    response = user.post("/overview/batches", {"year": "2027", "quota": "12", "deadline": "2027-03-31", "name": ""})
    assert response.status_code == 302 and response.headers["Location"].endswith("/overview#batches")
    page = user.get("/overview").get_data(as_text=True)
    assert "申报批次“2027年度创新驱动助力示范区（县）申报”已开启" in page
    with world.engine().sessions() as session:
        batch = session.scalar(select(Batch).where(Batch.year == 2027))
        assert (batch.quota, batch.deadline, batch.opened_by) == (12, date(2027, 3, 31), "province_office")


WRONG_BATCHES = (  # form, the field marked, the reason shown
    ({"year": "2027", "quota": "20", "deadline": "2027-03-31"}, "quota", "名额应在 10 至 15 个之间"),
    ({"year": "2027", "quota": "12", "deadline": "2026-01-01"}, "deadline", "截止日期不能早于今天"),
    ({"year": "2027", "quota": "x", "deadline": "2027-03-31"}, "quota", "请填写整数"),
    ({"year": "2027", "quota": "12", "deadline": "31.3.2027"}, "deadline", "请填写日期"),
    ({"year": "1999", "quota": "12", "deadline": "2027-03-31"}, "year", "2000 至 2100"),
    ({"year": "2026", "quota": "12", "deadline": "2027-03-31", "name": "2026年度创新驱动助力示范区（县）申报"},
     "name", "本年度已有同名的申报批次"),
)


def test_a_wrong_batch_is_refused_with_the_reason(world: World) -> None:
    user = signed_in(world.app, "province_office")
    for form, field, message in WRONG_BATCHES:
        response = user.post("/overview/batches", form)
        page = response.get_data(as_text=True)
        assert response.status_code == 400 and message in page, form
        assert re.search(rf'name="{field}"[^>]*aria-invalid="true"', page), form
        assert f'value="{form["quota"]}"' in page  # what was typed is kept
    with world.engine().sessions() as session:
        assert session.scalar(select(func.count()).select_from(Batch)) == 1


def test_the_english_overview(shared: World) -> None:
    user = signed_in(shared.app, "auditor")
    user.post("/language", {"lang": "en"})
    page = user.get("/overview").get_data(as_text=True)
    assert "Programme overview" in page and "Against the province" in page
    assert "Application batches" in page and "Zones by city" in page and "Applying" in page


def test_batch_counts_follow_the_cases(shared: World) -> None:
    page = signed_in(shared.app, "province_office").get("/overview").get_data(as_text=True)
    with shared.engine().sessions() as session:
        recommended = session.scalar(select(func.count()).select_from(Instance).where(Instance.batch_id.is_not(None)))
    row = re.search(r"<td>2026年度创新驱动助力示范区（县）申报</td>\s*<td>2026</td>\s*<td>15</td>\s*<td>(\d+)", page)
    assert row and int(row.group(1)) == recommended == 2
