"""The frame of a 公文 around its body (GB/T 9704-2012): 版头, 署名 with seals and 成文日期, 版记, 页码.

版头: the red 发文机关标志 35 mm below the text block's top (80 mm for 上行文), 发文字号 two lines below it
(centred, or left with the 签发人 on the right for 上行文), and a red rule 4 mm under the 发文字号. Seals are
placeholders: a red ring with the body's name on its arc and "（印章）".
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from reportlab.lib.colors import Color, black
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas

from engine.gongwen_page import BODY, LINE, PITCH, WIDTH, X0, X1, Y_BOTTOM, Y_TOP, Pages, baseline, cn_date
from engine.typeset import draw_line, text_width, wrap

if TYPE_CHECKING:
    from engine.gongwen import GongWen

SMALL = 14.0  # 4号: 版记 and page numbers
MARK = 40.0  # 发文机关标志, under the 15 mm character height limit
SEAL_R = 21 * mm  # a 42 mm official seal
RED = Color(0.86, 0.0, 0.05)


def put_mark(pages: Pages, doc: GongWen) -> None:
    """发文机关标志: 机关 + 文件 in red; a joint document stacks the names, 文件 centred on their right."""
    top = Y_TOP - (80 * mm if doc.upward else 35 * mm)
    if doc.urgency:
        pages.draw(X0, baseline(Y_TOP, BODY), doc.urgency, "hei", BODY)
    if len(doc.issuers) == 1:
        text = doc.issuers[0] + "文件"
        scale = min(100.0, WIDTH / text_width(text, "song", MARK) * 100)  # narrower glyphs for long names
        width = text_width(text, "song", MARK) * scale / 100
        pages.draw(X0 + (WIDTH - width) / 2, top - 0.88 * MARK, text, "song", MARK, color=RED, stroke=1.2, scale=scale)
        pages.y = top - MARK
        return
    size = MARK * (0.9 if len(doc.issuers) == 2 else 0.8)
    row = size * 1.2
    suffix_width = text_width("文件", "song", size)
    column = WIDTH - suffix_width - size / 2
    for index, name in enumerate(doc.issuers):
        scale = min(100.0, column / text_width(name, "song", size) * 100)
        y = top - 0.88 * size - index * row
        pages.draw(X0, y, name, "song", size, color=RED, stroke=1.1, scale=scale, justify_to=column)
    block = (len(doc.issuers) - 1) * row + size
    pages.draw(X1 - suffix_width, top - block / 2 - 0.38 * size, "文件", "song", size, color=RED, stroke=1.1)
    pages.y = top - block


def put_number_and_rule(pages: Pages, doc: GongWen) -> None:
    """发文字号 (and 签发人, two names a row, for 上行文), then the red separator 4 mm below."""
    pages.skip(2)  # 空二行 below the mark
    if doc.upward and doc.signers:
        label = "签发人："
        rows = ["  ".join(doc.signers[i : i + 2]) for i in range(0, len(doc.signers), 2)]
        names_x = X1 - PITCH - max(text_width(r, "kai", BODY) for r in rows)
        pages.draw(names_x - text_width(label, "song", BODY), baseline(pages.y, BODY), label, "song", BODY)
        for index, names in enumerate(rows):
            if index:
                pages.y -= LINE
            pages.draw(names_x, baseline(pages.y, BODY), names, "kai", BODY)
        pages.draw(X0 + PITCH, baseline(pages.y, BODY), doc.document_no, "song", BODY)
    else:
        x = X0 + (WIDTH - text_width(doc.document_no, "song", BODY)) / 2
        pages.draw(x, baseline(pages.y, BODY), doc.document_no, "song", BODY)
    rule_y = baseline(pages.y, BODY) - 0.12 * BODY - 4 * mm
    pages.op(lambda c: _rule(c, rule_y, 1.6, RED))
    pages.y = rule_y


def _rule(c: Canvas, y: float, width: float, color: Color = black) -> None:
    c.saveState()
    c.setStrokeColor(color)
    c.setLineWidth(width)
    c.line(X0, y, X1, y)
    c.restoreState()


def _seal(c: Canvas, cx: float, cy: float, name: str) -> None:
    c.saveState()
    c.setStrokeColor(RED)
    c.setLineWidth(2.2)
    c.circle(cx, cy, SEAL_R, stroke=1, fill=0)
    radius = SEAL_R * 0.74
    size = min(13.0, math.pi * radius * 1.3 / max(len(name), 1) / 1.15)
    span = min(math.radians(250), len(name) * size * 1.15 / radius)
    for index, char in enumerate(name):
        angle = math.pi / 2 + span / 2 - span * (index + 0.5) / len(name)
        c.saveState()
        c.translate(cx + math.cos(angle) * radius, cy + math.sin(angle) * radius)
        c.rotate(math.degrees(angle) - 90)
        draw_line(c, -size / 2, 0, char, "song", size, color=RED)
        c.restoreState()
    draw_line(c, cx - text_width("（印章）", "song", 11) / 2, cy + 8, "（印章）", "song", 11, color=RED)
    c.restoreState()


def put_signatures(pages: Pages, doc: GongWen) -> None:
    """署名 under seals and the 成文日期: 右空四字 for one body, under the last seal for joint documents.

    The seals' top stays within a line of the text above; when they do not fit, the last two lines of text
    go with them to the next page.
    """
    day = cn_date(doc.issued_on)
    per_row = 3 if len(doc.signatories) > 2 else 2
    rows = [doc.signatories[i : i + per_row] for i in range(0, len(doc.signatories), per_row)]
    cell = WIDTH / per_row
    pages.y -= LINE * 0.4
    for row_index, row in enumerate(rows):
        last_row = row_index == len(rows) - 1
        height = 2 * SEAL_R + (LINE if last_row else 0)
        if row_index == 0:
            pages.keep_with_previous(height)
        else:
            pages.need(height)
        centre_y = pages.y - SEAL_R
        slot_top = centre_y - 0.35 * SEAL_R + LINE  # 署名 and date sit below the seal's centre
        if len(doc.signatories) == 1:
            name_width = text_width(row[0], "song", BODY)
            centres = [min(X1 - 4 * PITCH - text_width(day, "song", BODY) / 2, X1 - name_width / 2)]
        else:
            centres = [X1 - cell * (len(row) - j - 0.5) for j in range(len(row))]
        for cx, name in zip(centres, row, strict=True):
            pages.op(lambda c, cx=cx, cy=centre_y, name=name: _seal(c, cx, cy, name))
            natural = text_width(name, "song", BODY)
            scale = min(100.0, (cell - PITCH / 2) / natural * 100) if len(doc.signatories) > 1 else 100.0
            x = cx - natural * scale / 200
            pages.draw(x, baseline(slot_top, BODY), name, "song", BODY, scale=scale)
        if last_row:
            date_x = centres[-1] - text_width(day, "song", BODY) / 2
            pages.draw(date_x, baseline(slot_top - LINE, BODY), day, "song", BODY)
            pages.y = min(slot_top - 2 * LINE, centre_y - SEAL_R)
        else:
            pages.y = centre_y - SEAL_R - LINE * 0.3


def put_colophon(pages: Pages, doc: GongWen) -> None:
    """版记 at the foot of the last page: 抄送 and 印发 between thick, thin and thick rules (drawn top down)."""
    row = LINE * 0.85
    label = "抄送："
    indent = X0 + SMALL  # 左右各空一字
    cc_lines: list[str] = []
    if doc.copies_to:
        first = WIDTH - 2 * SMALL - text_width(label, "song", SMALL)
        cc_lines = wrap("，".join(doc.copies_to) + "。", "song", SMALL, first)
    pages.need(row * (1 + len(cc_lines)) + LINE * 0.5)
    offset = (row - SMALL) / 2 + 0.12 * SMALL  # baseline above a row's bottom edge
    top = Y_BOTTOM + row * (1 + len(cc_lines))  # the last rule lies on the text block's bottom edge
    pages.op(lambda c, y=top: _rule(c, y, 1.0))
    text_x = indent + text_width(label, "song", SMALL)
    for index, line in enumerate(cc_lines):
        y = top - row * (index + 1) + offset
        if index == 0:
            pages.draw(indent, y, label, "song", SMALL)
        pages.draw(text_x, y, line, "song", SMALL)
    if cc_lines:
        pages.op(lambda c, y=Y_BOTTOM + row: _rule(c, y, 0.7))
    printed = cn_date(doc.issued_on) + "印发"
    pages.draw(indent, Y_BOTTOM + offset, doc.printer or "", "song", SMALL)
    pages.draw(X1 - SMALL - text_width(printed, "song", SMALL), Y_BOTTOM + offset, printed, "song", SMALL)
    pages.op(lambda c: _rule(c, Y_BOTTOM, 1.0))


def draw_page_number(c: Canvas, number: int) -> None:
    """"— n —" in 4号, 7 mm below the text block: odd pages right, even pages left, 空一字."""
    text = f"— {number} —"
    y = Y_BOTTOM - 7 * mm - 0.88 * SMALL
    x = X1 - SMALL - text_width(text, "song", SMALL) if number % 2 else X0 + SMALL
    draw_line(c, x, y, text, "song", SMALL)
