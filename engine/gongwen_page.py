"""The page grid of GB/T 9704-2012 and the body parts of a 公文: 标题, paragraphs, tables, 附件说明.

A4 with margins 37 (天头) / 35 / 28 (订口) / 26 mm leaves a 156 × 225 mm text block: 22 lines of 28
characters of 3号 text. Parts are placed into ``Pages`` as drawing operations at fixed positions, so the
layout is computed once and then drawn, and a block can still pull lines onto the next page.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas

from engine.typeset import (
    NO_LINE_END,
    NO_LINE_START,
    Cell,
    draw_line,
    draw_table_row,
    table_row_height,
    text_width,
    wrap,
)

PAGE_W, PAGE_H = A4
X0, X1 = 28 * mm, PAGE_W - 26 * mm
Y_TOP, Y_BOTTOM = PAGE_H - 37 * mm, 35 * mm
WIDTH = X1 - X0
PITCH = WIDTH / 28  # one character of 3号 body text; 28 per line
LINE = (Y_TOP - Y_BOTTOM) / 22  # 22 lines per page
BODY = PITCH  # ≈ 16 pt (3号)
TITLE = 22.0  # 2号
TABLE_STYLE = (12.0, 17.0, 4.0)  # 小四 text: size, leading, cell padding
# Where a two-line title may break: before these words, or after these closing marks (词意完整).
TITLE_BREAK_BEFORE = ("辽宁省", "第", "的", "“", "《")
TITLE_BREAK_AFTER = ("）", "”", "》", "、")

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


def cn_date(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def baseline(slot_top: float, size: float) -> float:
    # Centre the glyph box (about -0.12 … 0.88 em around the baseline) in a line slot.
    return slot_top - LINE / 2 - 0.38 * size


def _shifted(fn: Op, dy: float) -> Op:
    def op(c: Canvas) -> None:
        c.saveState()
        c.translate(0, dy)
        fn(c)
        c.restoreState()

    return op


class Pages:
    """Drawing operations per page, and the cursor ``y`` (the top of the next free line slot).

    Operations of text lines remember their slot's top (or their block's, for a heading with its table), so
    ``keep_with_previous`` can move the last lines of a page to the next one (a seal is never alone).
    """

    def __init__(self) -> None:
        self.pages: list[list[tuple[float | None, Op]]] = [[]]
        self.y = Y_TOP
        self.group: float | None = None  # while set, new lines belong to the block that starts there

    def op(self, fn: Op, top: float | None = None) -> None:
        self.pages[-1].append((top, fn))

    def draw(
        self, x: float, y: float, text: str, face: str, size: float, top: float | None = None, **style: Any
    ) -> None:
        """Draw a line of text at a fixed position; ``top`` names the line slot it belongs to, if any."""
        self.op(lambda c: draw_line(c, x, y, text, face, size, **style), top if self.group is None else self.group)

    def new_page(self) -> None:
        self.pages.append([])
        self.y = Y_TOP

    def need(self, height: float) -> None:
        if self.y - height < Y_BOTTOM - 0.5:
            self.new_page()

    def keep_with_previous(self, height: float, lines: int = 2) -> None:
        """Make room for a block of ``height``; if it goes to a new page, the last ``lines`` lines go too."""
        if self.y - height >= Y_BOTTOM - 0.5:
            return
        page = self.pages[-1]
        tops = sorted({top for top, _ in page if top is not None})
        lines = min(lines, len(tops) - 1)  # something must stay behind
        if lines < 1:
            self.new_page()
            return
        cut = tops[lines - 1]
        self.pages[-1] = [(top, fn) for top, fn in page if top is None or top > cut]
        moving = [(top, fn) for top, fn in page if top is not None and top <= cut]
        shift = Y_TOP - cut
        self.pages.append([(top + shift, _shifted(fn, shift)) for top, fn in moving])
        self.y += shift

    def text(self, x: float, text: str, face: str, size: float, **style: Any) -> None:
        """Put one line of text into the next line slot."""
        self.need(LINE)
        self.draw(x, baseline(self.y, size), text, face, size, top=self.y, **style)
        self.y -= LINE

    def skip(self, lines: float = 1) -> None:
        self.y -= LINE * lines


def _cut_cost(text: str, cut: int) -> float:
    """0 where a title may break naturally, 20 inside a word, never next to a bracket or quote mark."""
    if text[cut - 1] in NO_LINE_END or text[cut] in NO_LINE_START:
        return math.inf
    return 0 if text[cut:].startswith(TITLE_BREAK_BEFORE) or text[cut - 1] in TITLE_BREAK_AFTER else 20


def _title_splits(length: int, lines: int, fits: int, start: int = 0) -> list[list[int]]:
    """Every way to cut text[start:] into ``lines`` lines of 2 to ``fits`` characters (the cut positions)."""
    if lines == 1:
        return [[]] if 2 <= length - start <= fits else []
    found = []
    for cut in range(start + 2, min(start + fits, length - 2) + 1):
        found += [[cut, *rest] for rest in _title_splits(length, lines - 1, fits, cut)]
    return found


def title_lines(text: str, size: float = TITLE, width: float = WIDTH - 2 * PITCH) -> list[str]:
    """标题 lines that keep words whole (回行时词意完整) and even: cut where the words allow, near even lengths.

    One more line than needed is allowed when that avoids splitting a word (a 菱形 title).
    """
    fewest = len(wrap(text, "song", size, width))
    fits = int(width // size)
    if fewest == 1 or any(ord(ch) < 0x2000 for ch in text):  # Latin text has no fixed width: plain wrapping
        return wrap(text, "song", size, width)
    best: tuple[float, list[int]] | None = None
    for count in (fewest, fewest + 1):
        for cuts in _title_splits(len(text), count, fits):
            bounds = [0, *cuts, len(text)]
            lengths = [b - a for a, b in zip(bounds, bounds[1:], strict=False)]
            cost = sum(_cut_cost(text, cut) for cut in cuts) + 6 * (count - fewest)
            cost += (max(lengths) - min(lengths)) / 2
            if cost < math.inf and (best is None or cost < best[0]):
                best = (cost, cuts)
    if best is None:
        return wrap(text, "song", size, width)
    bounds = [0, *best[1], len(text)]
    return [text[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


def put_title(pages: Pages, title: str) -> None:
    for line in title_lines(title):
        pages.text(X0 + (WIDTH - text_width(line, "song", TITLE)) / 2, line, "song", TITLE, stroke=0.5)


def put_paragraph(pages: Pages, para: Para) -> None:
    face = {"h1": "hei", "h2": "kai"}.get(para.style, "song")
    if para.style == "center":
        for line in wrap(para.text, face, BODY, WIDTH):
            pages.text(X0 + (WIDTH - text_width(line, face, BODY)) / 2, line, face, BODY)
        return
    if para.style == "pair":
        pages.need(LINE)
        right_x = X1 - text_width(para.right, face, BODY)
        pages.draw(right_x, baseline(pages.y, BODY), para.right, face, BODY, top=pages.y)
        pages.text(X0, para.text, face, BODY)
        return
    indent = 0 if para.style == "flush" else 2 * PITCH
    lines = wrap(para.text, face, BODY, WIDTH, first_width=WIDTH - indent)
    for index, line in enumerate(lines):
        x = X0 + (indent if index == 0 else 0)
        last = index == len(lines) - 1
        pages.text(x, line, face, BODY, justify_to=None if last else X1 - x)


def put_table(pages: Pages, table: Table) -> None:
    widths = [w * WIDTH for w in table.widths]
    pages.y -= LINE * 0.25
    for row in table.rows:
        cells = list(row)
        height = table_row_height(cells, widths, *TABLE_STYLE)
        pages.need(height)
        top = pages.y
        pages.op(
            lambda c, top=top, cells=cells: draw_table_row(c, X0, top, cells, widths, TABLE_STYLE),
            top if pages.group is None else pages.group,
        )
        pages.y -= height
    pages.y -= LINE * 0.25


def _table_height(table: Table) -> float:
    widths = [w * WIDTH for w in table.widths]
    return sum(table_row_height(list(row), widths, *TABLE_STYLE) for row in table.rows) + LINE / 2


def put_blocks(pages: Pages, blocks: tuple[Para | Table, ...]) -> None:
    for index, block in enumerate(blocks):
        following = blocks[index + 1] if index + 1 < len(blocks) else None
        if isinstance(block, Para) and block.style == "h1" and isinstance(following, Table):
            # A heading stays with its table, and the table stays whole when a page can hold it.
            height = LINE + _table_height(following)
            if height <= Y_TOP - Y_BOTTOM:
                pages.need(height)
                pages.group = pages.y
        if isinstance(block, Table):
            put_table(pages, block)
            pages.group = None
        else:
            put_paragraph(pages, block)


def put_attachments(pages: Pages, names: tuple[str, ...]) -> None:
    """附件说明: 空一行, then 附件： 左空二字; several are numbered and aligned after the colon."""
    pages.skip(1)
    label = "附件："
    label_x = X0 + 2 * PITCH
    text_x = label_x + text_width(label, "song", BODY)
    for index, name in enumerate(names):
        number = f"{index + 1}．" if len(names) > 1 else ""
        hang = text_width(number, "song", BODY)
        for line_no, line in enumerate(wrap(number + name, "song", BODY, X1 - text_x - hang, first_width=X1 - text_x)):
            if index == 0 and line_no == 0:
                pages.need(LINE)
                pages.draw(label_x, baseline(pages.y, BODY), label, "song", BODY, top=pages.y)
            pages.text(text_x + (hang if line_no else 0), line, "song", BODY)
