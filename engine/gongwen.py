"""Party and government documents (党政机关公文, GB/T 9704-2012) as PDF.

A ``GongWen`` says what a document contains; ``render_pdf`` lays it out (``gongwen_page`` for the grid
and the body, ``gongwen_frame`` for 版头, seals, 版记 and page numbers) and draws it with reportlab.
Output is byte-for-byte deterministic: reportlab's invariant mode, and the PDF dates are the 成文日期.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date

from reportlab.lib.pagesizes import A4
from reportlab.pdfgen.canvas import Canvas

from engine.errors import EngineError
from engine.gongwen_frame import draw_page_number, put_colophon, put_mark, put_number_and_rule, put_signatures
from engine.gongwen_page import (
    BODY,
    X0,
    Annex,
    Op,
    Pages,
    Para,
    Table,
    cn_date,
    put_attachments,
    put_blocks,
    put_paragraph,
    put_title,
)
from engine.typeset import RENDER_LOCK

__all__ = ["Annex", "GongWen", "Para", "Table", "cn_date", "layout", "render_pdf"]


@dataclass(frozen=True)
class GongWen:
    issuers: tuple[str, ...]  # 发文机关标志: one body, or several for a joint document (主办机关 first)
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
    keywords: tuple[str, ...] = ()


def layout(doc: GongWen) -> list[list[Op]]:
    """Every page's drawing operations, in order."""
    pages = Pages()
    if doc.letterhead:
        put_mark(pages, doc)
        put_number_and_rule(pages, doc)
        pages.skip(2)  # 空二行 below the red rule
    put_title(pages, doc.title)
    if doc.recipient:
        pages.skip(1)
        put_paragraph(pages, Para(doc.recipient + "：", "flush"))
    else:
        pages.skip(0.5)
    put_blocks(pages, doc.blocks)
    if doc.attachments:
        put_attachments(pages, doc.attachments)
    put_signatures(pages, doc)
    if doc.note:
        put_paragraph(pages, Para(f"（{doc.note}）"))
    for annex in doc.annexes:  # 附件 start on a page of their own, 版记 follows the last one
        pages.new_page()
        pages.text(X0, annex.label, "hei", BODY)
        pages.skip(1)
        put_title(pages, annex.title)
        pages.skip(1)
        put_blocks(pages, annex.blocks)
    if doc.printer:
        put_colophon(pages, doc)
    return [[fn for _, fn in page] for page in pages.pages]


class RenderFailed(EngineError):
    code = "render_failed"


@contextmanager
def _as_engine_error() -> Iterator[None]:
    # reportlab reports its failures with its own and built-in exceptions; the engine's callers expect ours.
    try:
        yield
    except EngineError:
        raise
    except Exception as exc:
        raise RenderFailed(f"the PDF could not be drawn: {exc!r}") from exc


def render_pdf(doc: GongWen) -> bytes:
    """The PDF bytes of ``doc``; the same document always gives the same bytes."""
    stamp = doc.issued_on.strftime("D:%Y%m%d000000+08'00'")
    buffer = io.BytesIO()
    with RENDER_LOCK, _as_engine_error():
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
            draw_page_number(canvas, number)
            canvas.showPage()
        canvas.save()
    return buffer.getvalue()

