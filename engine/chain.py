"""The one walk over a hash chain: a case's history, the administrators' changes, the checkpoints.

Each chain is rows in order whose ``seq`` runs 1, 2, …, whose ``prev_hash`` is the previous row's hash
and whose ``hash`` covers the row's content and that previous hash (`engine.history.event_hash`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from engine.history import event_hash

OUT_OF_SEQUENCE = "out_of_sequence"
UNLINKED = "unlinked"
ALTERED = "altered"


@dataclass(frozen=True)
class LinkBreak:
    kind: str  # OUT_OF_SEQUENCE, UNLINKED or ALTERED
    seq: int
    expected_seq: int
    row: Sequence[Any]

    @property
    def reason(self) -> str:
        if self.kind == OUT_OF_SEQUENCE:
            return f"sequence number {self.seq}, expected {self.expected_seq}"
        if self.kind == UNLINKED:
            return "does not link to the previous event"
        return "content does not match its hash (altered)"


@dataclass(frozen=True)
class ChainWalk:
    count: int  # rows read, up to and including a broken one
    head: str | None  # the hash of the last intact row
    broken: LinkBreak | None = None


def walk_chain(
    rows: Iterable[Sequence[Any]],
    content: Callable[[Sequence[Any]], Sequence[str | None]],
    seq_at: int,
    prev_at: int,
    hash_at: int,
) -> ChainWalk:
    """Check ``rows`` (tuples; the seq, previous hash and hash at the given positions) link up from the
    first; ``content`` gives a row's hashed fields as strings. Stops at the first break."""
    previous = None
    count = 0
    for count, row in enumerate(rows, 1):
        if row[seq_at] != count:
            return ChainWalk(count, previous, LinkBreak(OUT_OF_SEQUENCE, row[seq_at], count, row))
        if row[prev_at] != previous:
            return ChainWalk(count, previous, LinkBreak(UNLINKED, row[seq_at], count, row))
        stored = row[hash_at]
        if stored != event_hash(previous, content(row)):
            return ChainWalk(count, previous, LinkBreak(ALTERED, row[seq_at], count, row))
        previous = stored
    return ChainWalk(count, previous)
