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

from channels.teams.channel import PrefetchingCredentialFactory
from channels.teams.models import TeamsConversationRef
from channels.teams.settings import TeamsSettings
from handlers.services import Services
from tests.channels.teams.conftest import SENDER_AAD, TeamsWorld, start_world, stop_world
from tests.channels.teams.fakes import FakeConnector
from tests.conftest import PDF

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


@pytest.fixture
async def secured(services: Services, signing_key: rsa.RSAPrivateKey
                  ) -> AsyncIterator[tuple[TeamsWorld, StaticCredentialFactory]]:
    factory = StaticCredentialFactory()
    connector = FakeConnector()
    await connector.start()
    authentication = ConfigurationBotFrameworkAuthentication(
        Config(connector.url + "/openid"),
        credentials_factory=PrefetchingCredentialFactory(factory))
    settings = TeamsSettings(enabled=True, app_id=APP_ID, app_password="secret")
    # Only the Bot Connector is named in SAFEHAVEN_ALLOWED_FETCH_HOSTS: the fake file host is
    # an internal service on 127.0.0.1 that nothing may make the bot fetch from.
    world = await start_world(services, settings, connector=connector,
                              authentication=authentication, fetch_hosts=("connector",))
    jwk = RSAAlgorithm.to_jwk(signing_key.public_key(), as_dict=True)
    world.connector.openid = {"issuer": ISSUER, "jwks_uri": world.connector.url + "/keys"}
    world.connector.jwks = {"keys": [{**jwk, "kid": "key-1", "endorsements": ["msteams"]}]}
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
