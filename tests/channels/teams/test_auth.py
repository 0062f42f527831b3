"""With a Microsoft App ID set, every activity must carry a Bot Framework token signed by a
key the OpenID metadata publishes: here the metadata and keys are served by the fake
connector, and tokens are really signed, so botbuilder's own validation runs."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest
from botbuilder.integration.aiohttp import ConfigurationBotFrameworkAuthentication
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from msrest.authentication import BasicTokenAuthentication
from sqlalchemy import func, select

from bot.messages import teams as msg
from channels.teams.cards import FILE_DOWNLOAD
from channels.teams.channel import PrefetchingCredentialFactory
from channels.teams.models import TeamsConversationRef
from channels.teams.settings import TeamsSettings
from handlers.services import Services
from store.models import ProcessedEvent, Transfer
from tests.support.core import PDF
from tests.support.fake_teams import TENANT, FakeConnector, FakeFileHost, Redirector, TeamsUser
from tests.support.teams import (
    APPROVER_AAD,
    SENDER_AAD,
    TeamsWorld,
    host_of,
    start_world,
    stop_world,
)

APP_ID = "0b5e7f1c-1111-4222-8333-944445555666"
ISSUER = "https://api.botframework.com"


class OutboundCredentials(BasicTokenAuthentication):
    """Stands in for msal: a fixed token, and a record of where it was fetched."""

    def __init__(self) -> None:
        super().__init__({"access_token": "outbound-token"})
        self.microsoft_app_id = APP_ID
        self.fetched_on: list[str] = []

    def get_access_token(self, force_refresh: bool = False) -> str:
        self.fetched_on.append(threading.current_thread().name)
        return "outbound-token"


class StaticCredentialFactory:
    def __init__(self) -> None:
        self.credentials = OutboundCredentials()

    async def is_valid_app_id(self, app_id: str) -> bool:
        return app_id == APP_ID

    async def is_authentication_disabled(self) -> bool:
        return False

    async def create_credentials(self, app_id: str, oauth_scope: str, login_endpoint: str,
                                 validate_authority: bool) -> Any:
        return self.credentials


class Config:
    APP_ID = APP_ID
    APP_PASSWORD = "secret"
    APP_TYPE = "MultiTenant"
    TO_BOT_FROM_CHANNEL_TOKEN_ISSUER = ISSUER
    TO_CHANNEL_FROM_BOT_OAUTH_SCOPE = "https://api.botframework.com"
    TO_CHANNEL_FROM_BOT_LOGIN_URL = "https://login.microsoftonline.com/botframework.com"

    def __init__(self, metadata_url: str) -> None:
        self.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL = metadata_url


@pytest.fixture
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


async def secure_world(services: Services, signing_key: rsa.RSAPrivateKey,
                       fetch_hosts: tuple[str, ...] = ("connector",),
                       channels: tuple[str, ...] = ("msteams",)
                       ) -> tuple[TeamsWorld, StaticCredentialFactory]:
    """Teams with a Microsoft App ID: activities must carry a token signed by ``signing_key``,
    which the OpenID metadata endorses for ``channels``."""
    factory = StaticCredentialFactory()
    connector = FakeConnector()
    await connector.start()
    authentication = ConfigurationBotFrameworkAuthentication(
        Config(connector.url + "/openid"),
        credentials_factory=PrefetchingCredentialFactory(factory))
    settings = TeamsSettings(enabled=True, app_id=APP_ID, app_password="secret",
                             tenant_ids=(TENANT,))
    world = await start_world(services, settings, connector=connector,
                              authentication=authentication, fetch_hosts=fetch_hosts)
    jwk = RSAAlgorithm.to_jwk(signing_key.public_key(), as_dict=True)
    world.connector.openid = {"issuer": ISSUER, "jwks_uri": world.connector.url + "/keys"}
    world.connector.jwks = {"keys": [{**jwk, "kid": "key-1", "endorsements": list(channels)}]}
    return world, factory


@pytest.fixture
async def secured(services: Services, signing_key: rsa.RSAPrivateKey
                  ) -> AsyncIterator[tuple[TeamsWorld, StaticCredentialFactory]]:
    # Only the Bot Connector is named in SAFEHAVEN_ALLOWED_FETCH_HOSTS: the fake file host is
    # an internal service on 127.0.0.1 that nothing may make the bot fetch from.
    world, factory = await secure_world(services, signing_key)
    yield world, factory
    await stop_world(world)


def token(key: rsa.RSAPrivateKey, service_url: str, **claims: Any) -> str:
    now = int(time.time())
    payload = {"iss": ISSUER, "aud": APP_ID, "serviceurl": service_url, "nbf": now - 5,
               "exp": now + 3600, **claims}
    return "Bearer " + jwt.encode(payload, key, algorithm="RS256", headers={"kid": "key-1"})


async def test_only_signed_activities_are_acted_on(
        secured: tuple[TeamsWorld, StaticCredentialFactory],
        signing_key: rsa.RSAPrivateKey) -> None:
    world, factory = secured
    user = world.user(SENDER_AAD, "Alex Sender")
    body = user.activity(text="help")
    service_url = body["serviceUrl"]
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    refused = [
        None,
        "Bearer not-a-token",
        "Basic dXNlcjpwYXNz",
        token(other_key, service_url),                            # signed by someone else
        token(signing_key, service_url, aud="11111111-2222-4333-8444-555566667777"),
        token(signing_key, "https://attacker.example/"),           # another service URL
        token(signing_key, service_url, iss="https://sts.windows.net/evil/"),
        token(signing_key, service_url, exp=int(time.time()) - 3600),
    ]
    for header in refused:
        user.headers = {"Authorization": header} if header else {}
        status, _ = await user.post(user.activity(text="help"))
        assert status == 401, header
    assert world.connector.calls == []
    async with world.services.db.read() as s:
        assert await s.scalar(select(func.count()).select_from(TeamsConversationRef)) == 0

    user.headers = {"Authorization": token(signing_key, service_url)}
    status, _ = await user.post(body)
    assert status == 200
    reply = user.received[-1]
    assert "I package confidential files" in reply.text
    assert reply.authorization == "Bearer outbound-token"
    assert factory.credentials.fetched_on and all(
        name != threading.main_thread().name for name in factory.credentials.fetched_on)

    # Files are only fetched from Teams' file hosts or hosts the operator named.
    await user.send(text="", attachments=[{
        "contentType": "application/vnd.microsoft.teams.file.download.info", "name": "a.pdf",
        "content": {"downloadUrl": world.files.serve(PDF)}}])
    assert "could not fetch “a.pdf”" in user.received[-1].text
    assert world.files.downloads == []


async def recorded(world: TeamsWorld) -> tuple[int, int, int]:
    """Conversation references, Teams events claimed, and transfers: what acting leaves."""
    async with world.services.db.read() as s:
        refs = await s.scalar(select(func.count()).select_from(TeamsConversationRef))
        claims = await s.scalar(select(func.count()).select_from(ProcessedEvent))
        transfers = await s.scalar(select(func.count()).select_from(Transfer))
    return int(refs or 0), int(claims or 0), int(transfers or 0)


def signed(user: TeamsUser, key: rsa.RSAPrivateKey, body: dict[str, Any]) -> dict[str, Any]:
    user.headers = {"Authorization": token(key, body["serviceUrl"])}
    return body


async def test_signed_web_chat_and_direct_line_do_not_act_as_teams_users(
        services: Services, signing_key: rsa.RSAPrivateKey) -> None:
    # The key is endorsed for Web Chat and Direct Line too, as for a bot registration with
    # those channels on: botbuilder accepts these tokens, Safe Haven still refuses them.
    world, _ = await secure_world(services, signing_key, fetch_hosts=("connector", "files"),
                                  channels=("msteams", "webchat", "directline"))
    try:
        approver = world.user(APPROVER_AAD, "Morgan Approver")
        for channel in ("webchat", "directline", "emulator"):
            for fields in ({"text": "help"},
                           {"text": "", "value": {"sh_q": "approval:SH-AAAA-22",
                                                  "sh_v": "approve"}},
                           {"text": "", "attachments": [{
                               "contentType": FILE_DOWNLOAD, "name": "a.pdf",
                               "content": {"downloadUrl": world.files.serve(PDF)}}]}):
                body = signed(approver, signing_key,
                              approver.activity(channelId=channel, **fields))
                status, _ = await approver.post(body)
                assert status == 403, (channel, fields)
        assert world.connector.calls == [] and world.files.downloads == []
        assert await recorded(world) == (0, 0, 0)
        # The same person, from Teams, is served: the refusal was the channel's.
        status, _ = await approver.post(signed(approver, signing_key,
                                               approver.activity(text="help")))
        assert status == 200 and "I package confidential files" in approver.received[-1].text
    finally:
        await stop_world(world)


@pytest.mark.parametrize("kind", ["groupChat", "channel", None])
async def test_signed_group_or_channel_activity_does_not_act_as_a_teams_user(
        services: Services, signing_key: rsa.RSAPrivateKey, kind: str | None) -> None:
    world, _ = await secure_world(services, signing_key, fetch_hosts=("connector", "files"))
    try:
        user = world.user(SENDER_AAD, "Alex Sender", conversation_type=kind or "personal",
                          conversation_id=f"19:{kind}@thread.tacv2")
        body = user.activity(text="", attachments=[{
            "contentType": FILE_DOWNLOAD, "name": "a.pdf",
            "content": {"downloadUrl": world.files.serve(PDF)}}])
        if kind is None:  # no conversationType at all: not a personal chat either
            del body["conversation"]["conversationType"]
        status, _ = await user.post(signed(user, signing_key, body))
        assert status == 200
        assert [c.text for c in user.received] == [msg.PERSONAL_CHAT_ONLY]
        assert world.files.downloads == []
        refs, _, transfers = await recorded(world)
        assert (refs, transfers) == (0, 0)
    finally:
        await stop_world(world)


async def test_signed_activity_with_a_service_url_not_on_the_list_is_refused(
        secured: tuple[TeamsWorld, StaticCredentialFactory],
        signing_key: rsa.RSAPrivateKey) -> None:
    world, _ = secured
    internal = FakeConnector()  # an internal service on 127.0.0.1, not named by the operator
    await internal.start()
    try:
        user = world.user(SENDER_AAD, "Alex Sender")
        for service_url in (internal.url + "/", "https://attacker.example/",
                            "https://smba.trafficmanager.net.attacker.example/",
                            "http://smba.trafficmanager.net/emea/",
                            "https://169.254.169.254/"):
            body = signed(user, signing_key, user.activity(text="help", serviceUrl=service_url))
            status, _ = await user.post(body)
            assert status == 403, service_url
        assert internal.calls == [] and world.connector.calls == []
        assert await recorded(world) == (0, 0, 0)
    finally:
        await internal.close()


async def test_signed_download_url_to_an_internal_service_is_not_fetched(
        services: Services, signing_key: rsa.RSAPrivateKey) -> None:
    internal = FakeFileHost()  # e.g. an admin API on 127.0.0.1, not on the allow-list
    await internal.start()
    secret = internal.serve(b"internal only")
    redirector = Redirector(secret)  # named by the operator, but it sends the bot elsewhere
    await redirector.start()
    world, _ = await secure_world(services, signing_key,
                                  fetch_hosts=("connector", host_of(redirector.url)))
    try:
        user = world.user(SENDER_AAD, "Alex Sender")
        port = host_of(internal.url).split(":")[1]
        for url in (secret,
                    f"https://contoso-my.sharepoint.com@127.0.0.1:{port}/files/x",
                    f"http://localhost:{port}/files/x",
                    f"http://2130706433:{port}/files/x",
                    f"{redirector.url}/files/report.pdf"):
            mark = len(user.received)
            body = signed(user, signing_key, user.activity(text="", attachments=[{
                "contentType": FILE_DOWNLOAD, "name": "report.pdf",
                "content": {"downloadUrl": url}}]))
            status, _ = await user.post(body)
            assert status == 200, url
            said = user.text_since(mark)
            assert "could not fetch “report.pdf”: it is not stored in OneDrive" in said, url
        assert internal.downloads == []
        assert redirector.hits == ["/files/report.pdf"]  # asked, and its redirect not followed
        assert (await recorded(world))[2] == 0
    finally:
        await stop_world(world)
        await internal.close()
        await redirector.close()
