"""Log lines are all written, in order, but the lines of one event-loop turn leave in one write."""

from __future__ import annotations

import asyncio
import io
import logging
import threading
from collections.abc import Iterator

import orjson
import pytest

from push_gateway.logs import JsonFormatter, TurnFlushedHandler


class CountingStream(io.StringIO):
    """Records each write, as an unbuffered stdout would make each one a system call."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return len(text)

    def events(self) -> list[list[str]]:
        """Each write's lines' ``event`` fields."""
        return [[orjson.loads(line)["event"] for line in text.splitlines()] for text in self.writes]


@pytest.fixture
def stream() -> CountingStream:
    return CountingStream()


@pytest.fixture
def logger(stream: CountingStream) -> Iterator[tuple[logging.Logger, TurnFlushedHandler]]:
    handler = TurnFlushedHandler(stream)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("test.turn_flushed")
    log.handlers[:] = [handler]
    log.propagate = False
    log.setLevel(logging.DEBUG)
    yield log, handler
    log.handlers.clear()


def test_before_attach_every_line_is_flushed_at_once(stream, logger) -> None:
    log, _ = logger
    log.info("one")
    log.info("two")
    assert stream.events() == [["one"], ["two"]]


async def test_lines_of_one_turn_leave_together_at_its_end(stream, logger) -> None:
    log, handler = logger
    handler.attach(asyncio.get_running_loop())
    for n in range(3):
        log.info("connect", extra={"n": n})
    assert stream.writes == []  # still this turn
    await asyncio.sleep(0)
    log.info("next turn")
    await asyncio.sleep(0)
    assert stream.events() == [["connect"] * 3, ["next turn"]]
    assert [orjson.loads(line)["n"] for line in stream.writes[0].splitlines()] == [0, 1, 2]


async def test_a_warning_is_written_at_once_after_the_lines_before_it(stream, logger) -> None:
    log, handler = logger
    handler.attach(asyncio.get_running_loop())
    log.info("connect")
    log.warning("broker lost")
    assert stream.events() == [["connect", "broker lost"]]
    await asyncio.sleep(0)
    assert stream.events() == [["connect", "broker lost"]]  # nothing left for the turn's end


async def test_a_line_from_another_thread_is_written_at_once(stream, logger) -> None:
    log, handler = logger
    handler.attach(asyncio.get_running_loop())
    thread = threading.Thread(target=log.info, args=("from a thread",))
    thread.start()
    thread.join()
    assert stream.events() == [["from a thread"]]


async def test_detach_flushes_what_waits(stream, logger) -> None:
    log, handler = logger
    handler.attach(asyncio.get_running_loop())
    log.info("last words")
    handler.detach()
    assert stream.events() == [["last words"]]
    log.info("after")
    assert stream.events() == [["last words"], ["after"]]


async def test_a_failed_write_at_the_turns_end_is_reported_not_raised_into_the_loop(stream, logger) -> None:
    log, handler = logger
    handler.attach(asyncio.get_running_loop())
    reported: list[str] = []
    handler.handleError = lambda record: reported.append(record.getMessage())  # type: ignore[method-assign]
    loop_errors: list[dict] = []
    asyncio.get_running_loop().set_exception_handler(lambda loop, context: loop_errors.append(context))

    def broken(text: str) -> int:
        raise BrokenPipeError("stdout closed")

    stream.write = broken  # type: ignore[method-assign]
    log.info("connect")
    await asyncio.sleep(0)
    assert reported == ["the log lines of one event-loop turn"] and loop_errors == []
