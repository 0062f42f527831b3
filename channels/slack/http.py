"""``POST /slack/events``: an aiohttp request in, a bolt request to the Slack channel, and
bolt's response back. Events, interactivity and the slash command share this one URL, as
the app manifest declares.

It adds only what bolt's own aiohttp adapter lacks for a public endpoint. A request bolt or
the channel could not handle is answered 400 (signed) or 401 (not) here, before bolt sees
it, because bolt would raise on it and the server would answer 500, or the channel's
background work would fail on it: a body that is not UTF-8, not JSON, nested too deeply to
parse, or not :func:`~channels.slack.payloads.well_formed`; a timestamp header that is not
a number, or a signature header that is not ASCII.

It also reads a form body bolt misreads: bolt takes any form with "payload" anywhere in it
(``/safehaven status payload``) for an interactivity payload, and reads nothing.

Signature and timestamp checks themselves are bolt's (the signature of a refused body is
checked here, over its bytes, only to choose between 400 and 401). A 500 that still comes
out of bolt is a real server fault (Slack unreachable while bolt checks the token, say),
and Slack retrying it is right.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from urllib.parse import parse_qsl

from aiohttp import web
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_internals import build_async_context
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from bot.near_misses import WebhookChannel
from channels.slack.channel import SlackChannel
from channels.slack.payloads import well_formed

log = logging.getLogger(__name__)
SLACK_CHANNEL = web.AppKey("slack_channel", SlackChannel)
PATH = "/slack/events"
MAX_AGE = 5 * 60        # seconds a signed request stays valid (bolt's rule too)


def _plausible_stamp(stamp: str) -> bool:
    """Seconds since 1970, as Slack sends them: ASCII digits (``int`` also reads other
    scripts' digits, and refuses more than 4,300 of them)."""
    return stamp.isascii() and stamp.isdigit() and len(stamp) <= 12


def valid_signature(secret: str | None, raw: bytes, stamp: str, signature: str) -> bool:
    """Slack's signature check, over the body's bytes (slack_sdk's decodes them as UTF-8
    first, and raises on a body that is not)."""
    if not secret or not _plausible_stamp(stamp) or not signature.isascii() \
            or abs(time.time() - int(stamp)) > MAX_AGE:
        return False
    expected = hmac.new(secret.encode(), b"v0:" + stamp.encode() + b":" + raw,
                        hashlib.sha256).hexdigest()
    return hmac.compare_digest(f"v0={expected}", signature)


def _refusal(status: int) -> web.Response:
    return web.json_response({"error": "invalid request" if status == 401 else "bad request"},
                             status=status)


def _bolt_request(raw: bytes, request: web.Request) -> AsyncBoltRequest | None:
    """The body as bolt reads it; None when it cannot be read (not UTF-8, not JSON, nested
    too deeply, or of shapes bolt's context building trips on)."""
    try:
        text = raw.decode("utf-8")
        bolt_request = AsyncBoltRequest(
            body=text, query=request.query_string,
            headers=request.headers)  # type: ignore[arg-type]  # a mapping, as bolt reads it
        if bolt_request.body == {} and "payload" in text and not text.startswith("{") \
                and bolt_request.content_type != "application/json":
            # bolt takes any form with "payload" anywhere in it (a slash command typed as
            # "/safehaven status payload", or from a channel named #payload) for an
            # interactivity payload, finds none and reads nothing: read the form itself.
            fields = dict(parse_qsl(text, keep_blank_values=True))
            if fields and "payload" not in fields:
                bolt_request.body = fields
                bolt_request.context = build_async_context(AsyncBoltContext(), fields)
    except (ValueError, TypeError, KeyError, AttributeError, IndexError, RecursionError):
        return None
    return bolt_request


async def slack_events(request: web.Request) -> web.Response:
    response = await _slack_events(request)
    if response.status == 401:  # unsigned, or signed with the wrong secret or too late
        channel = request.app[SLACK_CHANNEL]
        channel.svc.forged_requests.count(WebhookChannel.SLACK, channel.svc.clock())
    return response


async def _slack_events(request: web.Request) -> web.Response:
    channel = request.app[SLACK_CHANNEL]
    raw = await request.read()
    stamp = request.headers.get("X-Slack-Request-Timestamp", "")
    signature = request.headers.get("X-Slack-Signature", "")
    bolt_request = _bolt_request(raw, request)
    if bolt_request is not None and isinstance(bolt_request.body, dict) \
            and bolt_request.body.get("ssl_check") == "1":
        # Slack checking the slash command's certificate: bolt answers 200, does nothing.
        return _to_response(await channel.bolt.async_dispatch(bolt_request))
    if not _plausible_stamp(stamp) or not signature or not signature.isascii():
        return _refusal(401)
    if bolt_request is None or not well_formed(bolt_request.body):
        # Unusable: say 401 to strangers, 400 to Slack (a signed but malformed body).
        ok = valid_signature(channel.settings.signing_secret, raw, stamp, signature)
        log.warning("unusable Slack request body (signed: %s)", ok)
        return _refusal(400 if ok else 401)
    return _to_response(await channel.bolt.async_dispatch(bolt_request))


def _to_response(response: BoltResponse) -> web.Response:
    """Bolt's answer as an aiohttp response. Bolt's own adapter also copies cookies and
    every header, which only its OAuth pages use; we serve none of those, and this runs on
    every acknowledgement."""
    content_type = (response.headers.get("content-type") or ["text/plain"])[0]
    return web.Response(status=response.status, body=response.body.encode(),
                        content_type=content_type.split(";", 1)[0])
