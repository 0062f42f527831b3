"""The Teams channel: the Bot Framework adapter, the ``POST /api/messages`` route, and the
notifier that reaches Teams users first (approvers, senders hearing about receipts).

Inbound, a request is checked for shape (400), for coming from Teams with a Bot Connector
``serviceUrl`` (403), authenticated (401), then handed to
:class:`channels.teams.turns.TeamsTurns`. Files move through a session whose connections
refuse addresses :mod:`bot.egress` does not allow. Outbound, neutral replies are rendered by
:mod:`channels.teams.cards` and sent through botbuilder's connector.

Two botbuilder facts shape this module (read from botbuilder 4.17's source):

- Token validation refreshes the signing keys with blocking ``requests.get``, on the event
  loop, once a day; so requests carrying a token are validated in a worker thread.
- Outbound credentials fetch tokens with msal synchronously, on the event loop, when the
  cached token is missing or old; so :class:`PrefetchingCredentialFactory` keeps one
  credentials object per audience and refreshes its token in a worker thread first, and
  botbuilder's own call then finds it in msal's cache.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Sequence
from typing import Any

import aiohttp
from aiohttp import web
from botbuilder.core import TurnContext
from botbuilder.integration.aiohttp import (
    CloudAdapter,
    ConfigurationBotFrameworkAuthentication,
    ConfigurationServiceClientCredentialFactory,
)
from botbuilder.schema import Activity, ConversationReference
from botframework.connector.auth import (  # type: ignore[import-untyped]
    AuthenticateRequestResult,
    BotFrameworkAuthentication,
    ServiceClientCredentialsFactory,
)

from bot.egress import Destination, EgressPolicy
from bot.messages import teams as msg
from bot.near_misses import WebhookChannel
from bot.replies import FileReply, LinkReply, Reply, Text
from channels.egress import check_url, checked_connector
from channels.teams import cards, people, records
from channels.teams.files import UPLOAD_CHUNK
from channels.teams.inbound import InvalidActivity, parse_activity, refusal, tenant_refusal
from channels.teams.leases import UploadLeases
from channels.teams.models import OfferStatus
from channels.teams.settings import BotFrameworkConfig, TeamsSettings
from channels.teams.turns import TeamsTurns
from handlers.ports import NoticeOutcome
from handlers.services import Services

log = logging.getLogger(__name__)


class PrefetchingCredentialFactory(ServiceClientCredentialsFactory):  # type: ignore[misc]
    """Credentials reused per audience, their tokens fetched off the event loop."""

    def __init__(self, inner: ServiceClientCredentialsFactory) -> None:
        self._inner = inner
        self._cache: dict[tuple[str, str, str, bool], Any] = {}

    async def is_valid_app_id(self, app_id: str) -> bool:
        return bool(await self._inner.is_valid_app_id(app_id))

    async def is_authentication_disabled(self) -> bool:
        return bool(await self._inner.is_authentication_disabled())

    async def create_credentials(self, app_id: str, oauth_scope: str, login_endpoint: str,
                                 validate_authority: bool) -> Any:
        key = (app_id or "", oauth_scope or "", login_endpoint or "", bool(validate_authority))
        credentials = self._cache.get(key)
        if credentials is None:
            credentials = await self._inner.create_credentials(
                app_id, oauth_scope, login_endpoint, validate_authority)
            self._cache[key] = credentials
        if getattr(credentials, "microsoft_app_id", None):
            await asyncio.to_thread(credentials.get_access_token)
        return credentials


def build_authentication(settings: TeamsSettings) -> BotFrameworkAuthentication:
    config = BotFrameworkConfig(settings)
    factory = PrefetchingCredentialFactory(ConfigurationServiceClientCredentialFactory(config))
    return ConfigurationBotFrameworkAuthentication(config, credentials_factory=factory)


def _json_error(status: int, text: str) -> web.Response:
    return web.json_response({"error": text}, status=status)


class TeamsChannel:
    """One per process: built by :func:`channels.teams.app.plugin`."""

    def __init__(self, svc: Services, settings: TeamsSettings, *,
                 authentication: BotFrameworkAuthentication | None = None,
                 upload_chunk_bytes: int = UPLOAD_CHUNK) -> None:
        self.svc = svc
        self.settings = settings
        self.authentication = authentication or build_authentication(settings)
        self.adapter = CloudAdapter(self.authentication)
        self.upload_chunk_bytes = upload_chunk_bytes
        # Teams' own hosts (bot.egress) and SAFEHAVEN_ALLOWED_FETCH_HOSTS, nothing else.
        self.egress = EgressPolicy.of(svc.settings.allowed_fetch_hosts)
        self.turns = TeamsTurns(self)
        self.uploads = UploadLeases(svc.db, svc.clock, self.send_to)  # their leases
        self._http: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # --- lifecycle ---------------------------------------------------------------------

    def http(self) -> aiohttp.ClientSession:
        """The client for file downloads and uploads (not for the Bot Connector)."""
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(  # honour HTTPS_PROXY
                trust_env=True, connector=checked_connector(self.egress))
        return self._http

    def spawn(self, job: Coroutine[Any, Any, None]) -> None:
        """Run ``job`` after the HTTP response (an upload the user accepted)."""
        task = asyncio.create_task(job)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        await self.drain()
        if self._http is not None:
            await self._http.close()

    # --- inbound -----------------------------------------------------------------------

    async def _authenticate(self, activity: Activity, header: str) -> AuthenticateRequestResult:
        if not header:  # no network either way: anonymous when auth is off, refused when on
            return await self.authentication.authenticate_request(activity, None)

        def validate() -> AuthenticateRequestResult:
            return asyncio.run(self.authentication.authenticate_request(activity, header))

        return await asyncio.to_thread(validate)

    async def handle(self, request: web.Request) -> web.Response:
        """``POST /api/messages``: 4xx for anything malformed or unauthenticated."""
        if "application/json" not in request.headers.get("Content-Type", ""):
            return _json_error(415, "expected an application/json activity")
        try:
            body = await request.json()
        except ValueError:
            return _json_error(400, "the body is not JSON")
        try:
            activity = parse_activity(body)
        except InvalidActivity as exc:
            return _json_error(400, str(exc))
        refused = refusal(activity, self.egress)
        if refused is not None:
            log.warning("Teams activity refused: %s", refused)
            return _json_error(403, "not a Microsoft Teams activity Safe Haven takes")
        try:
            authenticated = await self._authenticate(
                activity, request.headers.get("Authorization", ""))
        except Exception as exc:  # botbuilder raises PermissionError, jwt errors, ...
            log.warning("Teams request refused: not authenticated (%s)", type(exc).__name__)
            self.svc.forged_requests.count(WebhookChannel.TEAMS, self.svc.clock())
            return _json_error(401, "not authenticated")
        refused = tenant_refusal(body, self.settings.tenant_ids,
                                 authenticated=self.settings.auth_enabled)
        if refused is not None:  # nothing recorded, nothing said, nothing fetched
            log.warning("Teams activity refused: %s", refused)
            return _json_error(403, "this Microsoft 365 organisation is not served here")
        try:
            invoke = await self.adapter.process_activity(authenticated, activity,
                                                         self.turns.on_turn)
        except Exception:
            log.exception("Teams activity %s could not be processed", activity.type)
            return _json_error(500, "the activity could not be processed")
        if invoke is not None:
            return web.json_response(invoke.body or {}, status=int(invoke.status))
        return web.Response(status=200)

    # --- outbound ----------------------------------------------------------------------

    async def prepare(self, replies: Sequence[Reply], *, user_id: str
                      ) -> list[dict[str, Any]]:
        """Render replies, people by name (:mod:`channels.teams.people`); an archive
        becomes a file consent card (:meth:`_offer`)."""
        replies = await people.with_names(self.svc.db, replies)
        link = next((r.url for r in replies if isinstance(r, LinkReply)), None)
        outgoing: list[cards.Outgoing] = []
        for reply in replies:
            outgoing.append(await self._offer(reply, user_id=user_id, link=link)
                            if isinstance(reply, FileReply) else reply)
        return cards.render(outgoing)

    async def _offer(self, archive: FileReply, *, user_id: str, link: str | None
                     ) -> cards.Outgoing:
        """The archive as a recorded offer for a file consent card. The sender's standing
        offer of the same archive (the core handing it back again, ``archive REF``) is
        offered again rather than doubled, so an older card's accept cannot upload it a
        second time; while that offer is uploading, a note says so instead."""
        db, now = self.svc.db, self.svc.clock()
        reference = archive.reference
        offer = await records.latest_offer(db, user_id=user_id, reference=reference)
        if offer is not None and offer.archive_key == archive.key:
            if offer.status is OfferStatus.UPLOADING:
                return Text(msg.ARCHIVE_BUSY.format(reference=reference))
            await records.move_offer(db, offer_id=offer.id, to=OfferStatus.OFFERED,
                                     only_from=records.OFFERABLE_AGAIN, now=now)
        else:
            offer = await records.create_offer(
                db, user_id=user_id, reference=reference, archive_key=archive.key,
                filename=archive.filename, size=archive.size, link_url=link, now=now)
        return cards.ConsentOffer(offer.id, reference, archive.filename, offer.size,
                                  archive.caption)

    async def send(self, turn: TurnContext, activities: Sequence[dict[str, Any]]) -> None:
        for data in activities:
            await turn.send_activity(Activity().deserialize(dict(data)))

    async def send_to(self, reference: dict[str, Any],
                      activities: Sequence[dict[str, Any]]) -> None:
        """Message a conversation first (a proactive message)."""
        if not activities:
            return
        # Stored before serviceUrl was checked on the way in, a reference is checked again.
        check_url(self.egress, Destination.TEAMS_CONNECTOR, str(reference.get("serviceUrl")))

        async def deliver(turn: TurnContext) -> None:
            await self.send(turn, activities)

        await self.adapter.continue_conversation(
            ConversationReference().deserialize(reference), deliver,
            bot_app_id=self.settings.app_id or "")

    async def notify(self, user_id: str, replies: Sequence[Reply], *,
                     reference: str | None = None) -> NoticeOutcome:
        """The :class:`handlers.ports.Notifier` port for ``teams:`` users. ``UNREACHABLE``
        when the bot has no conversation with them (they never opened a chat with it) or the
        Bot Connector did not take the message; never raised, and nothing kept here: the
        router keeps it for them, sealed, and it reaches them when they open the chat
        (:meth:`channels.teams.turns.TeamsTurns`) or next write to the bot."""
        try:
            target = await records.reference_for(self.svc.db, user_id=user_id)
            if target is None:
                log.info("no Teams conversation with this user yet (transfer %s)",
                         reference or "-")
                return NoticeOutcome.UNREACHABLE
            await self.send_to(target, await self.prepare(replies, user_id=user_id))
        except Exception as exc:
            log.error("could not deliver a Teams notification (transfer %s): %s",
                      reference or "-", type(exc).__name__)
            return NoticeOutcome.UNREACHABLE
        return NoticeOutcome.DELIVERED
