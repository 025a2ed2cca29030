"""Chinese typesetting on a reportlab canvas: fonts, line breaking with 避头尾 rules, justified lines, tables.

Fonts come from Debian packages (installed by the set-up, never downloaded). reportlab embeds only
TrueType outlines, so Noto CJK (CFF-based OpenType) cannot be used; the AR PL and WenQuanYi collections
can. 宋 stands in for 小标宋 and 仿宋 (a stroked 宋 for the heavier 小标宋), 楷 for 楷体, 黑 for 黑体.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from engine.errors import EngineError

FONT_DIRS = (Path("/usr/share/fonts/truetype"), Path("/usr/local/share/fonts"))
# face -> (file under a font dir, subfont index, Debian package); the CN subfonts use mainland glyph forms.
FONT_FILES = {
    "song": ("arphic/uming.ttc", 0, "fonts-arphic-uming"),
    "kai": ("arphic/ukai.ttc", 0, "fonts-arphic-ukai"),
    "hei": ("wqy/wqy-zenhei.ttc", 0, "fonts-wqy-zenhei"),
}
FALLBACK_ORDER = ("song", "hei", "kai")
# A line may not start with closing punctuation, nor end with an opening one (避头尾).
NO_LINE_START = set("，。、；：？！）》」』〕】”’％…—·,.;:?!)%")
NO_LINE_END = set("（《「『〔【“‘(")
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9.\-_/@%+:]*")
_lock = threading.Lock()
RENDER_LOCK = threading.RLock()  # reportlab keeps per-document font state on shared font objects


class FontsMissing(EngineError):
    code = "fonts_missing"


def _font_path(relative: str) -> Path | None:
    extra = os.environ.get("DEMOZONE_FONT_DIR")
    for folder in (*((Path(extra),) if extra else ()), *FONT_DIRS):
        if (folder / relative).is_file():
            return folder / relative
    return None


@lru_cache(maxsize=1)
def register_fonts() -> dict[str, str]:
    """Register the three faces once per process; returns face -> reportlab font name."""
    with _lock:
        names = {}
        for face, (relative, index, package) in FONT_FILES.items():
            path = _font_path(relative)
            if path is None:
                raise FontsMissing(f"font {relative} not found: install the Debian package {package}")
            name = f"DZ-{face}"
            if name not in pdfmetrics.getRegisteredFontNames():
                pdfmetrics.registerFont(TTFont(name, str(path), subfontIndex=index))
            names[face] = name
        return names


def _has_glyph(font_name: str, char: str) -> bool:
    return ord(char) in pdfmetrics.getFont(font_name).face.charToGlyph


@lru_cache(maxsize=8192)
def _font_for(char: str, face: str) -> str:
    fonts = register_fonts()
    order = [fonts[face]] + [fonts[f] for f in FALLBACK_ORDER if f != face]
    return next((f for f in order if _has_glyph(f, char)), order[0])


# Layout measures the same units and lines again and again (wrapping, row heights, centring); the
# answers depend only on the text and the registered fonts, so they are cached for the process.
@lru_cache(maxsize=16384)
def runs(text: str, face: str) -> tuple[tuple[str, str], ...]:
    """Split ``text`` into (font name, text) runs, falling back per character to a face that has the glyph."""
    result: list[tuple[str, str]] = []
    for char in text:
        font = _font_for(char, face)
        if result and result[-1][0] == font:
            result[-1] = (font, result[-1][1] + char)
        else:
            result.append((font, char))
    return tuple(result)


@lru_cache(maxsize=16384)
def text_width(text: str, face: str, size: float) -> float:
    return sum(pdfmetrics.stringWidth(chunk, font, size) for font, chunk in runs(text, face))


def _units(text: str) -> list[str]:
    """Breakable units: a Latin word or number stays whole, every other character stands alone."""
    units, pos = [], 0
    while pos < len(text):
        match = _WORD.match(text, pos)
        end = match.end() if match else pos + 1
        units.append(text[pos:end])
        pos = end
    return units


def wrap(text: str, face: str, size: float, width: float, first_width: float | None = None) -> list[str]:
    """Break ``text`` into lines no wider than ``width`` (the first line ``first_width``).

    Closing punctuation that would start a line hangs at the end of the previous one, and an opening
    bracket that would end a line moves down, as Chinese typesetting does.
    """
    lines: list[str] = []
    current: list[str] = []
    used = 0.0
    limit = width if first_width is None else first_width
    for unit in _units(text):
        unit_width = text_width(unit, face, size)
        if current and used + unit_width > limit + 0.01 and unit[0] not in NO_LINE_START:
            carry = []
            while current and current[-1][-1] in NO_LINE_END:
                carry.insert(0, current.pop())
            lines.append("".join(current))
            current, used, limit = carry, sum(text_width(u, face, size) for u in carry), width
        current.append(unit)
        used += unit_width
    if current or not lines:
        lines.append("".join(current))
    return lines


def draw_line(
    canvas: Canvas,
    x: float,
    y: float,
    text: str,
    face: str,
    size: float,
    *,
    justify_to: float | None = None,
    color: object = None,
    stroke: float = 0.0,
    scale: float = 100.0,
) -> float:
    """Draw one line at baseline ``y``; spread it to ``justify_to`` points; ``stroke`` > 0 thickens it."""
    width = text_width(text, face, size) * scale / 100
    gaps = len(text) - 1
    spacing = (justify_to - width) / gaps if justify_to and gaps > 0 else 0.0
    obj = canvas.beginText(x, y)
    obj.setCharSpace(spacing * 100 / scale)  # PDF scales character spacing by the horizontal scale too
    obj.setHorizScale(scale)
    canvas.saveState()
    if color is not None:
        canvas.setFillColor(color)
        canvas.setStrokeColor(color)
    if stroke:
        canvas.setLineWidth(stroke)
        obj.setTextRenderMode(2)  # fill and stroke: a heavier face from the same glyphs
    for font, chunk in runs(text, face):
        obj.setFont(font, size)
        obj.textOut(chunk)
    canvas.drawText(obj)
    canvas.restoreState()
    return width + spacing * gaps


@dataclass(frozen=True)
class Cell:
    text: str
    span: int = 1
    face: str = "song"
    align: str = "left"  # left | center


def table_row_height(cells: list[Cell], widths: list[float], size: float, leading: float, pad: float) -> float:
    heights = []
    column = 0
    for cell in cells:
        cell_width = sum(widths[column : column + cell.span]) - 2 * pad
        heights.append(len(wrap(cell.text, cell.face, size, cell_width)) * leading + 2 * pad)
        column += cell.span
    return max(heights)


def draw_table_row(
    canvas: Canvas, x: float, top: float, cells: list[Cell], widths: list[float], style: tuple[float, float, float]
) -> float:
    """Draw one bordered row whose top edge is at ``top``; ``style`` is (size, leading, padding)."""
    size, leading, pad = style
    height = table_row_height(cells, widths, size, leading, pad)
    column, left = 0, x
    canvas.setLineWidth(0.6)
    for cell in cells:
        cell_width = sum(widths[column : column + cell.span])
        canvas.rect(left, top - height, cell_width, height, stroke=1, fill=0)
        lines = wrap(cell.text, cell.face, size, cell_width - 2 * pad)
        # Centre the lines vertically: the first baseline sits 0.8 em below the block's top.
        y = top - (height - len(lines) * leading) / 2 - (leading - size) / 2 - 0.85 * size
        for line in lines:
            line_x = left + pad
            if cell.align == "center":
                line_x = left + (cell_width - text_width(line, cell.face, size)) / 2
            draw_line(canvas, line_x, y, line, cell.face, size)
            y -= leading
        column += cell.span
        left += cell_width
    return height
