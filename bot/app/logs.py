"""Log lines as JSON objects, one a line (``SAFEHAVEN_LOG_FORMAT=json``), for a log collector.

Each line holds ``time`` (ISO 8601, UTC), ``level``, ``logger`` and ``message``; ``reference``
when the record carries one (``extra={"reference": ...}``) or its message names a transfer
reference (``SH-XXXX-XX``: random, naming nobody); ``event`` when the record carries one
(``extra={"event": ...}``); ``exception`` with the traceback when there is one, as the text
format would print it. Nothing else a record holds is copied: a field passed in ``extra``
under any other name never reaches the line, so a log call cannot leak a personal field
into it by accident. The message is the same text the plain format writes, after the same
filters (the portal's token redaction runs on its logger, before any handler).
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

REFERENCE_IN_TEXT = re.compile(r"\bSH-[0-9A-Z]{4}-[0-9A-Z]{2}\b")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _word(value: object) -> str | None:
    """A short one-line string for ``reference`` or ``event``, else None."""
    if value is None:
        return None
    text = str(value)
    return text if len(text) <= 64 and text.isprintable() else None


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, and reference, event and
    exception when there are."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": message,
        }
        reference = _word(getattr(record, "reference", None))
        if reference is None:
            found = REFERENCE_IN_TEXT.search(message)
            reference = found.group(0) if found else None
        if reference is not None:
            line["reference"] = reference
        event = _word(getattr(record, "event", None))
        if event is not None:
            line["event"] = event
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False)


def formatter(json_lines: bool) -> logging.Formatter:
    """The formatter for every handler: JSON lines, or the readable text format."""
    return JsonFormatter() if json_lines else logging.Formatter(TEXT_FORMAT)
