"""What stands between a Slack request and a listener: the workspace check, the route for
the events that come at volume, and Socket Mode's payload check.

Bolt runs its own middleware first (the signature and timestamp check, authorisation,
ignoring the bot's own events, URL verification); these run after it, in the order
:class:`~channels.slack.channel.SlackChannel` registers them. ``POST /slack/events`` checks
payloads in :mod:`channels.slack.http` before bolt sees them; :class:`CheckedSocketMode`
does the same for Socket Mode. Repeated events are claimed by their ``event_id`` once the
work runs (:meth:`channels.slack.runtime.SlackRuntime.claim`): claiming needs the database,
which an acknowledgement must not wait for.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from bot.messages import slack as msg
from channels.slack.inputs import dig, text_of
from channels.slack.payloads import well_formed

log = logging.getLogger(__name__)


class EventRoutes(AsyncMiddleware):
    """The events that arrive at volume (every direct message), handed to their handler by
    a global middleware instead of a listener.

    A listener costs every request bolt's listener matching and, twice (once for the
    matcher, once for the listener), its keyword-argument injection, which builds every
    argument any listener could ask for: together about 40 % of bolt's work per request.
    Registered with ``AsyncApp.use``, this runs after all of bolt's own middleware (the
    signature and timestamp check, authorisation, ignoring the bot's own events, URL
    verification), so it sees exactly what a listener would; it then acknowledges the way
    bolt's own middleware does (``context.ack()``, without calling ``next``). Everything else
    (other events, interactivity, the slash command) goes on to the listeners.
    """

    def __init__(self, routes: Mapping[str, Callable[[dict[str, Any]], Awaitable[None]]],
                 *, arrived: Callable[[], None]) -> None:
        self.routes = routes
        self.arrived = arrived

    async def async_process(self, *, req: AsyncBoltRequest, resp: BoltResponse,
                            next: Callable[[], Awaitable[BoltResponse]]) -> BoltResponse:
        self.arrived()
        body = req.body
        if body.get("type") == "event_callback":
            kind = dig(body, "event", "type")
            route = self.routes.get(kind) if isinstance(kind, str) else None
            if route is not None:
                await route(body)
                response: BoltResponse = await req.context.ack()
                return response
        return await next()


def person_team(body: Mapping[str, Any]) -> str:
    """The workspace (or Enterprise Grid organisation) of the person behind a request:
    the person's own team where Slack gives it (``event.user_team`` in a Slack Connect
    conversation, ``user.team_id`` in interactivity), else the request's team."""
    event = body.get("event")
    if isinstance(event, Mapping):
        own = event.get("user_team") or event.get("team")
        if isinstance(own, str) and own:
            return own
    own = dig(body, "user", "team_id") or body.get("user_team")
    if isinstance(own, str) and own:
        return own
    team = body.get("team")
    if isinstance(team, Mapping):
        team = team.get("id")
    return text_of(team or body.get("team_id"))


class OwnWorkspace(AsyncMiddleware):
    """Only people of the bot's own Slack workspace (or its Enterprise Grid organisation,
    or a workspace listed in ``SLACK_TEAM_IDS``) are served. The bot's workspace is the
    one its token belongs to (bolt's ``auth.test``, cached). A request from anyone else,
    say a Slack Connect user in a shared conversation, is acknowledged and refused: their
    files are never downloaded, and a direct message or command is answered with why."""

    def __init__(self, *, listed: Callable[[], Iterable[str]],
                 refuse: Callable[[Mapping[str, Any]], None]) -> None:
        self.listed = listed    # SLACK_TEAM_IDS, read at each request
        self.refuse = refuse    # tells a person writing from elsewhere why (once)

    async def async_process(self, *, req: AsyncBoltRequest, resp: BoltResponse,
                            next: Callable[[], Awaitable[BoltResponse]]) -> BoltResponse:
        authorised = req.context.authorize_result
        own = {getattr(authorised, "team_id", None), getattr(authorised, "enterprise_id", None),
               *self.listed()} - {None, ""}
        team = person_team(req.body)
        if team in own:
            return await next()
        log.warning("refused a Slack request from another workspace (%s)", team or "none")
        body = req.body
        if team and body.get("command"):  # (every real request names its team)
            response: BoltResponse = await req.context.ack(msg.OTHER_WORKSPACE)
            return response
        if team and body.get("type") == "event_callback":
            self.refuse(body)
        response = await req.context.ack()
        return response


class CheckedSocketMode(AsyncSocketModeHandler):
    """Socket Mode with the same door as ``POST /slack/events``: a payload that is not
    :func:`~channels.slack.payloads.well_formed` is acknowledged (or Slack sends it again) and
    dropped, never handed to bolt or the channel."""

    async def handle(self, client: SocketModeClient,  # type: ignore[override]
                     req: SocketModeRequest) -> None:
        if req.type in ("events_api", "interactive", "slash_commands") \
                and not well_formed(req.payload):
            log.warning("refused a malformed Socket Mode %s payload", req.type)
            await client.send_socket_mode_response(
                SocketModeResponse(envelope_id=req.envelope_id))
            return
        await super().handle(client, req)
