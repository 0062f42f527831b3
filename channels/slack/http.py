"""``POST /slack/events``: an aiohttp request in, a bolt request to the Slack channel, and
bolt's response back. Events, interactivity and the slash command share this one URL, as
the app manifest declares.

It adds only what bolt's own aiohttp adapter lacks for a public endpoint: a body that is not
UTF-8 or not JSON, a payload whose fields have shapes bolt's own parsing assumes (an
``event`` that is not an object, ``actions`` that is not a list of objects, ...), or a
timestamp that is not a number, is answered 400 (signed) or 401 (not) here, because bolt
would raise on it and the server would answer 500. Signature and timestamp checks
themselves are bolt's. A 500 that still comes out of bolt is a real server fault (Slack
unreachable while bolt checks the token, say), and Slack retrying it is right.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.signature import SignatureVerifier

from channels.slack.channel import SlackChannel

log = logging.getLogger(__name__)
SLACK_CHANNEL = web.AppKey("slack_channel", SlackChannel)
PATH = "/slack/events"


# Fields bolt reads while routing a request, and the JSON types its code assumes for them.
_OBJECTS = ("event", "view", "message", "previous_message", "item", "assistant_thread",
            "function_data", "container", "state")
_OBJECT_OR_TEXT = ("user", "team", "channel", "enterprise")
_LISTS_OF_OBJECTS = ("actions", "authorizations")


def well_formed(body: Any) -> bool:
    """Whether a parsed payload has the shapes bolt's routing code relies on."""
    if not isinstance(body, dict):
        return False
    for key in _OBJECTS:
        if body.get(key) is not None and not isinstance(body[key], dict):
            return False
    for key in _OBJECT_OR_TEXT:
        if body.get(key) is not None and not isinstance(body[key], dict | str):
            return False
    for key in _LISTS_OF_OBJECTS:
        value = body.get(key)
        if value is not None and not (isinstance(value, list)
                                      and all(isinstance(v, dict) for v in value)):
            return False
    kind = body.get("type")
    if kind == "block_actions" and not body.get("actions"):
        return False  # bolt routes on actions[0]
    if kind in ("view_submission", "view_closed"):
        view = body.get("view")
        if not isinstance(view, dict) or not all(isinstance(view.get(k), str)
                                                 for k in ("type", "callback_id")):
            return False
    event = body.get("event")
    if isinstance(event, dict) and not isinstance(event.get("type"), str | None):
        return False  # bolt matches event listeners on it, by regular expression too
    return not isinstance(event, dict) or well_formed(
        {k: v for k, v in event.items()
         if k in (*_OBJECT_OR_TEXT, "item", "message", "previous_message")})


def _refusal(status: int) -> web.Response:
    return web.json_response({"error": "invalid request" if status == 401 else "bad request"},
                             status=status)


async def slack_events(request: web.Request) -> web.Response:
    channel = request.app[SLACK_CHANNEL]
    raw = await request.read()
    stamp = request.headers.get("X-Slack-Request-Timestamp", "")
    signature = request.headers.get("X-Slack-Signature", "")
    try:
        bolt_request: AsyncBoltRequest | None = AsyncBoltRequest(
            body=raw.decode("utf-8"), query=request.query_string,
            headers=request.headers)  # type: ignore[arg-type]  # a mapping, as bolt reads it
    except (ValueError, TypeError, KeyError, AttributeError, IndexError):
        bolt_request = None
    if bolt_request is not None and isinstance(bolt_request.body, dict) \
            and bolt_request.body.get("ssl_check") == "1":
        # Slack checking the slash command's certificate: bolt answers 200, does nothing.
        return _to_response(await channel.bolt.async_dispatch(bolt_request))
    if not stamp.isdigit() or not signature:
        return _refusal(401)
    if bolt_request is None or not well_formed(bolt_request.body):
        # Unusable: say 401 to strangers, 400 to Slack (a signed but malformed body).
        verifier = SignatureVerifier(channel.settings.signing_secret or "-")
        signed = verifier.is_valid(raw, stamp, signature)
        log.warning("unusable Slack request body (signed: %s)", signed)
        return _refusal(400 if signed else 401)
    return _to_response(await channel.bolt.async_dispatch(bolt_request))


def _to_response(response: BoltResponse) -> web.Response:
    """Bolt's answer as an aiohttp response. Bolt's own adapter also copies cookies and
    every header, which only its OAuth pages use; we serve none of those, and this runs on
    every acknowledgement."""
    content_type = (response.headers.get("content-type") or ["text/plain"])[0]
    return web.Response(status=response.status, body=response.body.encode(),
                        content_type=content_type.split(";", 1)[0])
