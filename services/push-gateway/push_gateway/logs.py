"""Structured logging: one JSON object per line, ``extra`` fields included, written once per loop turn."""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time

import orjson

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD:
                doc[key] = value
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(doc, default=str).decode()


class TurnFlushedHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that writes once per event-loop turn instead of once per line.

    The gateway logs every connect and disconnect; in a reconnect storm a write per line was ~5 %
    of a connect's CPU. Lines logged on the loop's thread wait here until the turn ends, then
    leave in one write, in order (the handler keeps them itself: with ``PYTHONUNBUFFERED``, as in
    the image, the stream would not). A WARNING or worse, a line from another thread, and every
    line before ``attach`` are written at once, after whatever waits.
    """

    def __init__(self, stream: object = None) -> None:
        super().__init__(stream)  # type: ignore[arg-type]
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._pending: list[str] = []

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Defer writes to the end of ``loop``'s turns (from the loop's own thread)."""
        self._loop, self._loop_thread = loop, threading.get_ident()

    def detach(self) -> None:
        self._loop = None
        self.flush()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            pending = self._pending
            pending.append(self.format(record) + self.terminator)
            loop = self._loop
            if (
                loop is None
                or record.levelno >= logging.WARNING
                or threading.get_ident() != self._loop_thread
                or loop.is_closed()
            ):
                self.flush()
            elif len(pending) == 1:
                loop.call_soon(self._end_of_turn)
        except RecursionError:
            raise
        except Exception:  # noqa: BLE001 - logging's own policy: report, never raise into the caller
            self.handleError(record)

    def _end_of_turn(self) -> None:
        try:
            self.flush()
        except Exception:  # noqa: BLE001 - as emit does: report on stderr, never raise into the loop
            self.handleError(logging.makeLogRecord({"msg": "the log lines of one event-loop turn"}))

    def flush(self) -> None:
        """Write what waits (also at the turn's end, and from ``logging.shutdown`` at exit)."""
        self.acquire()
        try:
            if self._pending:
                text, self._pending = "".join(self._pending), []
                self.stream.write(text)
            super().flush()
        finally:
            self.release()


def attach(loop: asyncio.AbstractEventLoop) -> None:
    """Batch the root handler's writes per turn of ``loop`` (see ``TurnFlushedHandler``)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, TurnFlushedHandler):
            handler.attach(loop)


def detach() -> None:
    for handler in logging.getLogger().handlers:
        if isinstance(handler, TurnFlushedHandler):
            handler.detach()


def configure(level: str = "INFO") -> None:
    handler = TurnFlushedHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The gateway writes its own structured line per connect and disconnect; websockets' INFO
    # "connection open/closed" lines repeat them and cost CPU in a connect storm.
    logging.getLogger("websockets").setLevel(logging.WARNING)
    # The JSON lines carry none of: caller file/line (a stack walk per record), thread, process.
    logging._srcfile = None  # type: ignore[attr-defined]  # documented in logging: skips findCaller()
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logging.Formatter.converter = time.gmtime
