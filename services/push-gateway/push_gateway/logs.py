"""Structured logging: one JSON object per line, ``extra`` fields included."""

from __future__ import annotations

import logging
import sys
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


def configure(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stdout)
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
