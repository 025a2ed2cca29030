"""Document numbers: the first numbers of a year taken at once get 1 and 2, never an error."""

from __future__ import annotations

import threading

from engine.db import write_session
from engine.numbering import next_document_number


def test_concurrent_first_numbers_of_a_year_queue_instead_of_failing(engine) -> None:
    numbers: list[int] = []
    errors: list[Exception] = []
    barrier = threading.Barrier(4)

    def take() -> None:
        barrier.wait()
        try:
            with write_session(engine.sessions) as session:
                numbers.append(next_document_number(session, "辽科协测", 2031))
        except Exception as exc:  # noqa: BLE001 - the test reports whatever went wrong
            errors.append(exc)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(numbers) == [1, 2, 3, 4]
