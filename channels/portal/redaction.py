"""Keep portal tokens out of logs.

aiohttp's access log writes the request line, and so the path ``/p/<token>``: anyone who
can read the log could download the archive. The token is found in the path as sent and as
decoded (the router decodes ``/%70/<token>`` to the portal's ``/p/<token>``). Two layers stop
that:

* :class:`RedactingAccessLogger`, for ``web.run_app(..., access_log_class=...)`` or
  ``AppRunner(..., access_log_class=...)``, rewrites the request line and the Referer
  before aiohttp formats them;
* :func:`install_log_filter` (run by ``mount_portal``) adds a filter to the
  ``aiohttp.access`` logger that redacts whatever reaches it, so a server started without
  the class leaks nothing either.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import unquote

from aiohttp.web_log import AccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

# /p/<token>, also percent-encoded as the router decodes it: aiohttp routes /%70/<token> to
# the portal (and %2F, never routed there, is redacted too: more is harmless).
TOKEN_IN_PATH = re.compile(r"((?:/|%2[Ff])(?:p|%70)(?:/|%2[Ff]))[^\s\"'?#/]+")
REDACTED = r"\1[redacted]"
LEFT_OVER = re.compile(r"/p/(?!\[redacted\])[^\s\"'?#/]")


def redact(text: str) -> str:
    """``text`` with every portal token replaced by ``[redacted]``, judged on the text as
    sent and as decoded (an encoding the pattern does not know: the decoded text is kept)."""
    redacted = TOKEN_IN_PATH.sub(REDACTED, text)
    if LEFT_OVER.search(unquote(redacted)):
        redacted = TOKEN_IN_PATH.sub(REDACTED, unquote(redacted))
    return redacted


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redact_value(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_redact_value(v) for v in value)
    return value


class RedactingAccessLogger(AccessLogger):
    """aiohttp's access logger with portal tokens replaced by ``[redacted]``."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        referer = request.headers.get("Referer", "")
        path = redact(request.raw_path)
        if path != request.raw_path or redact(referer) != referer:
            headers = request.headers.copy()
            if referer:
                headers["Referer"] = redact(referer)
            request = request.clone(rel_url=path, headers=headers)
        super().log(request, response, time)


class TokenFilter(logging.Filter):
    """Redacts portal tokens from a record's message, arguments and extra fields."""

    EXTRA_FIELDS = ("first_request_line", "request_header")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if record.args:
            record.args = _redact_value(record.args)
        for name in self.EXTRA_FIELDS:
            if hasattr(record, name):
                setattr(record, name, _redact_value(getattr(record, name)))
        return True


def install_log_filter(logger_name: str = "aiohttp.access") -> None:
    """Add the filter once to ``logger_name`` (idempotent)."""
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, TokenFilter) for f in logger.filters):
        logger.addFilter(TokenFilter())
