"""The page layout of Party and government documents (党政机关公文格式, GB/T 9704-2012), drawn with reportlab.

A ``GongWen`` says what a document contains; ``render_pdf`` places it: A4, margins 37/35/28/26 mm, a
156 × 225 mm text block of 22 lines × 28 characters. 版头 (red 发文机关标志, 发文字号 and 签发人, red
separator), 主体 (标题, 主送机关, 正文, 附件说明, 署名, 成文日期 under a seal placeholder, 附注), annexes
on their own pages, 版记 (抄送, 印发) at the foot of the last page, page numbers "— n —".
Output is byte-for-byte deterministic: reportlab's invariant mode, and the PDF dates are the 成文日期.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from reportlab.lib.colors import Color, black
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas

from engine.typeset import RENDER_LOCK, Cell, draw_line, draw_table_row, table_row_height, text_width, wrap

PAGE_W, PAGE_H = A4
X0, X1 = 28 * mm, PAGE_W - 26 * mm
Y_TOP, Y_BOTTOM = PAGE_H - 37 * mm, 35 * mm
WIDTH = X1 - X0
PITCH = WIDTH / 28  # one character of 3号 body text; 28 per line
LINE = (Y_TOP - Y_BOTTOM) / 22  # 22 lines per page
BODY = PITCH  # ≈ 16 pt (3号)
TITLE = 22.0  # 2号
SMALL = 14.0  # 4号: 版记 and page numbers
MARK = 40.0  # 发文机关标志, under the 15 mm height limit
SEAL_R = 21 * mm  # a 42 mm official seal
RED = Color(0.86, 0.0, 0.05)
TABLE_SIZE, TABLE_LEADING, TABLE_PAD = 12.0, 17.0, 4.0

Op = Callable[[Canvas], None]


@dataclass(frozen=True)
class Para:
    text: str
    style: str = "body"  # body | h1 (黑体) | h2 (楷体) | flush (顶格) | center | pair (text left, right right)
    right: str = ""


@dataclass(frozen=True)
class Table:
    widths: tuple[float, ...]  # fractions of the text width
    rows: tuple[tuple[Cell, ...], ...]


@dataclass(frozen=True)
class Annex:
    label: str  # 附件1
    title: str
    blocks: tuple[Para | Table, ...]


@dataclass(frozen=True)
class GongWen:
    issuers: tuple[str, ...]  # 发文机关标志: one body, or several for a joint document
    document_no: str
    title: str
    recipient: str | None  # 主送机关
    blocks: tuple[Para | Table, ...]
    signatories: tuple[str, ...]  # 发文机关署名, each under its own seal
    issued_on: date  # 成文日期
    letterhead: bool = True  # False: a form (表) with its title on top and no 版头
    upward: bool = False  # 上行文 (请示): 签发人 beside the 发文字号, the mark lower down
    signers: tuple[str, ...] = ()
    urgency: str | None = None
    attachments: tuple[str, ...] = ()  # 附件说明
    annexes: tuple[Annex, ...] = ()
    note: str | None = None  # 附注
    copies_to: tuple[str, ...] = ()  # 抄送
    printer: str | None = None  # 印发机关; None: no 版记
    keywords: tuple[str, ...] = field(default_factory=tuple)


def cn_date(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def _baseline(slot_top: float, size: float) -> float:
    # Centre the glyph box (about -0.12 … 0.88 em around the baseline) in a line slot.
    return slot_top - LINE / 2 - 0.38 * size


class _Pages:
    """Drawing operations per page, and the cursor (top of the next free line slot)."""

    def __init__(self) -> None:
        self.pages: list[list[Op]] = [[]]
        self.y = Y_TOP

    def op(self, fn: Op) -> None:
        self.pages[-1].append(fn)

    def new_page(self) -> None:
        self.pages.append([])
        self.y = Y_TOP

    def need(self, height: float) -> None:
        if self.y - height < Y_BOTTOM - 0.5:
            self.new_page()

    def text(self, x: float, text: str, face: str, size: float, **style: object) -> None:
        """Put one line of text into the next line slot."""
        self.need(LINE)
        y = _baseline(self.y, size)
        self.op(lambda c: draw_line(c, x, y, text, face, size, **style))
        self.y -= LINE

    def skip(self, lines: float = 1) -> None:
        self.y -= LINE * lines


def _mark(pages: _Pages, doc: GongWen) -> None:
    top = Y_TOP - (80 * mm if doc.upward else 35 * mm)
    if doc.urgency:
        y = _baseline(Y_TOP, BODY)
        pages.op(lambda c: draw_line(c, X0, y, doc.urgency, "hei", BODY))
    if len(doc.issuers) == 1:
        text = doc.issuers[0] + "文件"
        scale = min(100.0, WIDTH / text_width(text, "song", MARK) * 100)
        width = text_width(text, "song", MARK) * scale / 100
        y = top - 0.88 * MARK
        pages.op(lambda c: draw_line(c, X0 + (WIDTH - width) / 2, y, text, "song", MARK, color=RED, stroke=1.2, scale=scale))
        pages.y = top - MARK
        return
    size = MARK * 0.9
    row = size * 1.25
    suffix_width = text_width("文件", "song", size)
    column = WIDTH - suffix_width - size / 2
    for index, name in enumerate(doc.issuers):
        y = top - 0.88 * size - index * row
        scale = min(100.0, column / text_width(name, "song", size) * 100)
        pages.op(
            lambda c, y=y, name=name, scale=scale: draw_line(
                c, X0, y, name, "song", size, color=RED, stroke=1.1, scale=scale, justify_to=column
            )
        )
    block = (len(doc.issuers) - 1) * row + size
    y = top - block / 2 - 0.38 * size
    pages.op(lambda c: draw_line(c, X1 - suffix_width, y, "文件", "song", size, color=RED, stroke=1.1))
    pages.y = top - block


def _number_and_rule(pages: _Pages, doc: GongWen) -> None:
    pages.skip(2)  # 空二行 below the mark
    if doc.upward and doc.signers:
        label = "签发人："
        names = [doc.signers[i : i + 2] for i in range(0, len(doc.signers), 2)]
        name_width = max(text_width("  ".join(pair), "kai", BODY) for pair in names)
        label_x = X1 - PITCH - name_width - text_width(label, "song", BODY)
        for index, pair in enumerate(names):
            y = _baseline(pages.y, BODY)
            if index == 0:
                pages.op(lambda c, y=y: draw_line(c, label_x, y, label, "song", BODY))
            pages.op(lambda c, y=y, pair=pair: draw_line(c, X1 - PITCH - name_width, y, "  ".join(pair), "kai", BODY))
            if index < len(names) - 1:
                pages.y -= LINE
        y = _baseline(pages.y, BODY)
        pages.op(lambda c: draw_line(c, X0 + PITCH, y, doc.document_no, "song", BODY))
    else:
        y = _baseline(pages.y, BODY)
        x = X0 + (WIDTH - text_width(doc.document_no, "song", BODY)) / 2
        pages.op(lambda c: draw_line(c, x, y, doc.document_no, "song", BODY))
    rule_y = y - 0.12 * BODY - 4 * mm  # 发文字号之下 4 mm
    pages.op(lambda c: _rule(c, rule_y, 1.6, RED))
    pages.y = rule_y


def _rule(c: Canvas, y: float, width: float, color: Color = black) -> None:
    c.saveState()
    c.setStrokeColor(color)
    c.setLineWidth(width)
    c.line(X0, y, X1, y)
    c.restoreState()


def _title(pages: _Pages, title: str) -> None:
    for line in _balanced(title, TITLE, WIDTH - 2 * PITCH):
        x = X0 + (WIDTH - text_width(line, "song", TITLE)) / 2
        pages.text(x, line, "song", TITLE, stroke=0.5)


def _balanced(text: str, size: float, width: float) -> list[str]:
    """Title lines of even length, longer ones first (a 梯形 title rather than one long line and a stub)."""
    count = len(wrap(text, "song", size, width))
    if count == 1:
        return [text]
    per_line = math.ceil(len(text) / count)
    return wrap(text, "song", size, text_width(text[:per_line], "song", size) + 0.5)


def _paragraph(pages: _Pages, para: Para) -> None:
    face = {"h1": "hei", "h2": "kai"}.get(para.style, "song")
    if para.style == "center":
        for line in wrap(para.text, face, BODY, WIDTH):
            pages.text(X0 + (WIDTH - text_width(line, face, BODY)) / 2, line, face, BODY)
        return
    if para.style == "pair":
        pages.need(LINE)
        y = _baseline(pages.y, BODY)
        right_x = X1 - text_width(para.right, face, BODY)
        pages.op(lambda c: draw_line(c, right_x, y, para.right, face, BODY))
        pages.text(X0, para.text, face, BODY)
        return
    indent = 0 if para.style == "flush" else 2 * PITCH
    lines = wrap(para.text, face, BODY, WIDTH, first_width=WIDTH - indent)
    for index, line in enumerate(lines):
        x = X0 + (indent if index == 0 else 0)
        last = index == len(lines) - 1
        pages.text(x, line, face, BODY, justify_to=None if last else X1 - x)


def _table(pages: _Pages, table: Table) -> None:
    widths = [w * WIDTH for w in table.widths]
    pages.y -= LINE * 0.25
    for row in table.rows:
        height = table_row_height(list(row), widths, TABLE_SIZE, TABLE_LEADING, TABLE_PAD)
        pages.need(height)
        top = pages.y
        pages.op(lambda c, top=top, row=row: draw_table_row(c, X0, top, list(row), widths, TABLE_SIZE, TABLE_LEADING, TABLE_PAD))
        pages.y -= height
    pages.y -= LINE * 0.25


def _blocks(pages: _Pages, blocks: tuple[Para | Table, ...]) -> None:
    for block in blocks:
        (_table if isinstance(block, Table) else _paragraph)(pages, block)


def _attachments(pages: _Pages, names: tuple[str, ...]) -> None:
    pages.skip(1)
    label = "附件："
    label_x = X0 + 2 * PITCH
    text_x = label_x + text_width(label, "song", BODY)
    for index, name in enumerate(names):
        item = f"{index + 1}．{name}" if len(names) > 1 else name
        for number, line in enumerate(wrap(item, "song", BODY, X1 - text_x)):
            if index == 0 and number == 0:
                pages.need(LINE)
                y = _baseline(pages.y, BODY)
                pages.op(lambda c, y=y: draw_line(c, label_x, y, label, "song", BODY))
            pages.text(text_x + (text_width(f"{index + 1}．", "song", BODY) if number and len(names) > 1 else 0), line, "song", BODY)


def _seal(c: Canvas, cx: float, cy: float, name: str) -> None:
    """A red seal placeholder: ring, the body's name along the upper arc, and （印章）."""
    c.saveState()
    c.setStrokeColor(RED)
    c.setFillColor(RED)
    c.setLineWidth(2.2)
    c.circle(cx, cy, SEAL_R, stroke=1, fill=0)
    size = min(13.0, math.pi * SEAL_R * 0.78 * 1.3 / max(len(name), 1))
    span = min(math.radians(250), len(name) * size * 1.15 / (SEAL_R * 0.78))
    for index, char in enumerate(name):
        angle = math.pi / 2 + span / 2 - span * (index + 0.5) / len(name)
        c.saveState()
        c.translate(cx + math.cos(angle) * SEAL_R * 0.74, cy + math.sin(angle) * SEAL_R * 0.74)
        c.rotate(math.degrees(angle) - 90)
        draw_line(c, -size / 2, 0, char, "song", size, color=RED)
        c.restoreState()
    label_width = text_width("（印章）", "song", 11)
    draw_line(c, cx - label_width / 2, cy + 8, "（印章）", "song", 11, color=RED)
    c.restoreState()


def _signatures(pages: _Pages, doc: GongWen) -> None:
    """署名 under seals and the 成文日期 (右空四字; under the last seal for joint documents)."""
    day = cn_date(doc.issued_on)
    names = doc.signatories
    rows = [names[i : i + 3] for i in range(0, len(names), 3)]
    cell = WIDTH / 3
    pages.y -= LINE * 0.4
    for row_index, row in enumerate(rows):
        last_row = row_index == len(rows) - 1
        pages.need(2 * SEAL_R + (LINE if last_row else 0))
        centre_y = pages.y - SEAL_R
        slot_top = centre_y - 0.35 * SEAL_R + LINE
        if len(names) == 1:
            centres = [X1 - 4 * PITCH - text_width(day, "song", BODY) / 2]
        else:
            centres = [X1 - cell * (len(row) - j - 0.5) for j in range(len(row))]
        for cx, name in zip(centres, row, strict=True):
            pages.op(lambda c, cx=cx, name=name: _seal(c, cx, centre_y, name))
            y = _baseline(slot_top, BODY)
            x = cx - text_width(name, "song", BODY) / 2
            pages.op(lambda c, x=x, y=y, name=name: draw_line(c, x, y, name, "song", BODY))
        if last_row:
            y = _baseline(slot_top - LINE, BODY)
            x = centres[-1] - text_width(day, "song", BODY) / 2
            pages.op(lambda c, x=x, y=y: draw_line(c, x, y, day, "song", BODY))
            pages.y = min(slot_top - 2 * LINE, centre_y - SEAL_R)
        else:
            pages.y = centre_y - SEAL_R - LINE * 0.3


def _colophon(pages: _Pages, doc: GongWen) -> None:
    """版记 at the foot of the last page: 抄送 and 印发 between a thick, a thin and a thick rule."""
    row = LINE * 0.85
    label = "抄送："
    indent = X0 + SMALL
    cc_lines = []
    if doc.copies_to:
        text = "，".join(doc.copies_to) + "。"
        first = WIDTH - 2 * SMALL - text_width(label, "song", SMALL)
        cc_lines = wrap(text, "song", SMALL, first)
    height = row * (1 + len(cc_lines)) + LINE * 0.5
    pages.need(height)
    bottom = Y_BOTTOM
    pages.op(lambda c: _rule(c, bottom, 1.0))
    printed = cn_date(doc.issued_on) + "印发"
    y = bottom + (row - SMALL) / 2 + 0.12 * SMALL
    right_x = X1 - SMALL - text_width(printed, "song", SMALL)
    pages.op(lambda c: draw_line(c, indent, y, doc.printer or "", "song", SMALL))
    pages.op(lambda c: draw_line(c, right_x, y, printed, "song", SMALL))
    top = bottom + row
    if cc_lines:
        pages.op(lambda c, top=top: _rule(c, top, 0.7))
        text_x = indent + text_width(label, "song", SMALL)
        for index, line in enumerate(reversed(cc_lines)):
            y = top + (row - SMALL) / 2 + 0.12 * SMALL
            if index == len(cc_lines) - 1:
                pages.op(lambda c, y=y: draw_line(c, indent, y, label, "song", SMALL))
            pages.op(lambda c, y=y, line=line: draw_line(c, text_x, y, line, "song", SMALL))
            top += row
    pages.op(lambda c, top=top: _rule(c, top, 1.0))


def _page_number(c: Canvas, number: int) -> None:
    text = f"— {number} —"
    y = Y_BOTTOM - 7 * mm - 0.88 * SMALL
    width = text_width(text, "song", SMALL)
    x = X1 - SMALL - width if number % 2 else X0 + SMALL  # odd pages right, even pages left, 空一字
    draw_line(c, x, y, text, "song", SMALL)


def layout(doc: GongWen) -> list[list[Op]]:
    pages = _Pages()
    if doc.letterhead:
        _mark(pages, doc)
        _number_and_rule(pages, doc)
        pages.skip(2)  # 空二行 below the red rule
    _title(pages, doc.title)
    if doc.recipient:
        pages.skip(1)
        _paragraph(pages, Para(doc.recipient + "：", "flush"))
    elif not doc.letterhead:
        pages.skip(0.5)
    _blocks(pages, doc.blocks)
    if doc.attachments:
        _attachments(pages, doc.attachments)
    _signatures(pages, doc)
    if doc.note:
        _paragraph(pages, Para(f"（{doc.note}）"))
    for annex in doc.annexes:
        pages.new_page()
        pages.text(X0, annex.label, "hei", BODY)
        pages.skip(1)
        _title(pages, annex.title)
        pages.skip(1)
        _blocks(pages, annex.blocks)
    if doc.printer:
        _colophon(pages, doc)
    return pages.pages


def render_pdf(doc: GongWen) -> bytes:
    """The PDF bytes of ``doc``; the same document always gives the same bytes."""
    stamp = doc.issued_on.strftime("D:%Y%m%d000000+08'00'")
    buffer = io.BytesIO()
    with RENDER_LOCK:
        pages = layout(doc)
        canvas = Canvas(buffer, pagesize=A4, invariant=1, pageCompression=1)
        canvas.setDateFormatter(lambda *_: stamp)
        canvas.setTitle(doc.title)
        canvas.setAuthor("、".join(doc.signatories))
        canvas.setSubject(doc.document_no)
        canvas.setCreator("demozone")
        canvas.setKeywords(list(doc.keywords))
        for number, ops in enumerate(pages, start=1):
            for op in ops:
                op(canvas)
            _page_number(canvas, number)
            canvas.showPage()
        canvas.save()
    return buffer.getvalue()
