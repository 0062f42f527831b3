"""Voice calls behind a real proxy: Safe Haven served at ``https://host.example/safehaven``
by a proxy that strips the prefix (``location /safehaven/ { proxy_pass http://app/; }``).
Twilio is played here as it behaves: it requests exactly the URLs it was given (resolving a
relative one against the host alone) and signs each for that URL. Also what the call says
and which calls use answering-machine detection."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
from aiohttp import ClientResponse, ClientSession, web
from aiohttp.test_utils import TestClient, TestServer
from twilio.request_validator import RequestValidator
from yarl import URL

from bot.app.web import create_app
from bot.passwords import spell_for_voice
from channels.twilio.settings import TwilioSettings, load_twilio_settings
from channels.twilio.transport import TwilioTransport
from channels.twilio.webhooks import mount_twilio
from handlers.password_sends import dispatch
from handlers.services import Services
from store.models import Transfer
from tests.channels.twilio.test_twilio import receipts, row, share
from tests.support.core import RECIPIENT, Clock
from tests.support.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio

ORIGIN = "https://host.example"
PREFIX = "/safehaven"
PUBLIC = ORIGIN + PREFIX
SWITCHBOARD = dict(RECIPIENT, phone="020 7946 0000 ext 123")
# TwiML attributes that name a URL Twilio requests (none may be relative).
URL_ATTRIBUTES = {"action", "url", "statusCallback", "recordingStatusCallback", "waitUrl",
                  "amdStatusCallback", "transcribeCallback", "partialResultCallback"}
URL_ELEMENTS = {"Redirect", "Play"}


@pytest.fixture
async def fake(clock: Clock) -> AsyncIterator[FakeTwilio]:
    server = await FakeTwilio(clock=clock).start()
    yield server
    await server.close()


@pytest.fixture
def twilio_settings(fake: FakeTwilio) -> TwilioSettings:
    settings = load_twilio_settings({
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_FROM_NUMBER": "+441632960001", "SAFEHAVEN_PUBLIC_URL": PUBLIC + "/",
        "TWILIO_API_URL": fake.url})
    assert settings is not None and settings.public_url == PUBLIC
    return settings


@pytest.fixture
async def tw(services: Services, twilio_settings: TwilioSettings) -> AsyncIterator[Services]:
    transport = TwilioTransport(twilio_settings)
    services.transport = transport
    yield services
    await transport.close()


class Twilio:
    """Twilio's side of the webhooks: posts to the public host (the proxy below), signed for
    the exact URL requested."""

    def __init__(self, proxy: TestClient[web.Request, web.Application]) -> None:
        self.proxy = proxy

    async def post(self, url: str, form: dict[str, str], *,
                   signed_for: str | None = None) -> ClientResponse:
        parts = urlsplit(url)
        assert parts.scheme == "https" and f"https://{parts.netloc}" == ORIGIN, url
        signature = RequestValidator(AUTH_TOKEN).compute_signature(signed_for or url, form)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        return await self.proxy.post(path, data=form,
                                     headers={"X-Twilio-Signature": signature})


def prefix_stripping_proxy(app_url: URL) -> web.Application:
    """``location /safehaven/ { proxy_pass http://127.0.0.1:PORT/; }``: the prefix is cut
    off, the rest of the path and the query string are forwarded as they came."""

    async def forward(request: web.Request) -> web.Response:
        raw = request.raw_path
        if not raw.startswith(PREFIX + "/"):
            raise web.HTTPNotFound()
        async with ClientSession() as session, session.request(
                request.method, URL(str(app_url).rstrip("/") + raw[len(PREFIX):], encoded=True),
                data=await request.read(), headers={
                    k: v for k, v in request.headers.items()
                    if k.lower() in ("content-type", "x-twilio-signature")}) as upstream:
            return web.Response(status=upstream.status, body=await upstream.read(),
                                content_type=upstream.content_type)

    proxy = web.Application()
    proxy.router.add_route("*", "/{tail:.*}", forward)
    return proxy


@pytest.fixture
async def twilio(tw: Services, twilio_settings: TwilioSettings) -> AsyncIterator[Twilio]:
    app = create_app(tw, migrate=False, scheduler=False)
    mount_twilio(app, tw, twilio_settings)
    async with TestServer(app) as server:
        async with TestClient(TestServer(prefix_stripping_proxy(server.make_url("/")))) as c:
            yield Twilio(c)


def twiml_urls(body: str) -> Iterator[str]:
    """Every URL in a TwiML document that Twilio would request."""
    for element in ET.fromstring(body).iter():
        for name, value in element.attrib.items():
            if name in URL_ATTRIBUTES:
                yield value
        if element.tag in URL_ELEMENTS and element.text:
            yield element.text.strip()


def gathers(body: str) -> list[ET.Element]:
    return list(ET.fromstring(body).iter("Gather"))


def assert_under_public(url: str) -> None:
    parts = urlsplit(url)
    assert parts.scheme == "https" and parts.netloc, f"not absolute https: {url!r}"
    assert url.startswith(PUBLIC + "/twilio/"), f"not under {PUBLIC}: {url!r}"
    assert urljoin(PUBLIC + "/twilio/voice/1/answer", url) == url  # Twilio resolves it as is


async def call_code(tw: Services, ref: str) -> tuple[str, str]:
    """The transfer's call code and the first spelled phrase of its password."""
    async with tw.db.read() as s:
        t = await s.get(Transfer, ref)
    assert t is not None and t.call_code and t.password_sealed
    return t.call_code, spell_for_voice(tw.vault.open(t.password_sealed, reference=ref))[1]


async def placed_call(tw: Services, fake: FakeTwilio, clock: Clock,
                      recipient: dict[str, str]) -> tuple[str, dict[str, str]]:
    ref = await share(tw, recipient=recipient, password="voice", call_at="2026-11-24 10:00")
    clock.advance(days=1, minutes=31)
    await dispatch.run_due(tw)
    assert fake.calls, "no call placed"
    return ref, fake.calls[-1]


async def test_code_keyed_behind_a_prefix_proxy_is_read_and_the_password_spoken(
        tw: Services, fake: FakeTwilio, twilio: Twilio, clock: Clock) -> None:
    ref, call = await placed_call(tw, fake, clock, SWITCHBOARD)
    sid, code_form = call["Sid"], {"CallSid": call["Sid"], "AccountSid": ACCOUNT_SID}
    code, first_phrase = await call_code(tw, ref)

    answer = await twilio.post(call["Url"], {**code_form, "CallStatus": "in-progress"})
    assert answer.status == 200
    body = await answer.text()
    action = gathers(body)[0].get("action") or ""
    assert_under_public(action)  # a root-relative "/twilio/..." would go to host.example/twilio

    # Where a relative action would have sent the code: signed for the prefix-less URL, it
    # is refused when it reaches the app (the check includes the public URL's prefix).
    wrong_url = ORIGIN + urlsplit(action).path.removeprefix(PREFIX)
    refused = await twilio.post(action, {**code_form, "Digits": code}, signed_for=wrong_url)
    assert refused.status == 403 and first_phrase not in await refused.text()

    spoken = await twilio.post(action, {**code_form, "Digits": code})
    assert spoken.status == 200
    text = await spoken.text()
    assert first_phrase in text
    repeat = gathers(text)[0].get("action") or ""
    assert_under_public(repeat)
    again = await twilio.post(repeat, {"CallSid": sid, "Digits": "1"})
    assert first_phrase in await again.text()
    done = await twilio.post(call["StatusCallback"], {"CallSid": sid, "CallStatus": "completed"})
    assert done.status == 204 and (await row(tw, ref, "voice")).status == "delivered"
    assert "read out in a call" in receipts(tw)


async def test_every_url_given_to_twilio_is_absolute_https_under_the_public_url(
        tw: Services, fake: FakeTwilio, twilio: Twilio, clock: Clock) -> None:
    sms_ref = await share(tw)
    direct_ref = await share(tw, password="voice", call_at="2026-11-24 10:00")
    await share(tw, recipient=SWITCHBOARD, password="voice", call_at="2026-11-24 10:00")
    clock.advance(days=1, minutes=31)
    await dispatch.run_due(tw)
    assert len(fake.messages) == 2 and len(fake.calls) == 2  # SMS, heads-up, two calls
    direct, switchboard = sorted(fake.calls, key=lambda c: "SendDigits" in c)
    checked = 0
    for params in [*fake.messages, *fake.calls]:
        for name, value in params.items():
            if name == "Url" or name.endswith("Callback"):
                assert_under_public(value)
                checked += 1
    assert checked == 2 + 3 + 2  # SMS: status; direct: url, status, AMD; switchboard: two

    # Each of them works through the proxy: Twilio's signed requests are accepted.
    sms = next(m for m in fake.messages if sms_ref in m["Body"])
    delivered = await twilio.post(sms["StatusCallback"], {
        "MessageSid": sms["Sid"], "MessageStatus": "delivered", "AccountSid": ACCOUNT_SID})
    assert delivered.status == 204 and (await row(tw, sms_ref)).status == "delivered"
    verdict = await twilio.post(direct["AsyncAmdStatusCallback"],
                                {"CallSid": direct["Sid"], "AnsweredBy": "human"})
    assert verdict.status == 204

    # Every TwiML document: the answer, a wrong code, the right code, a repeat.
    code, _ = await call_code(tw, direct_ref)
    bodies: list[str] = []
    for call in (direct, switchboard):
        form = {"CallSid": call["Sid"]}
        bodies.append(await (await twilio.post(call["Url"], form)).text())
        action = gathers(bodies[-1])[0].get("action") or ""
        bodies.append(await (await twilio.post(action, {**form, "Digits": "000000"})).text())
    action = gathers(bodies[0])[0].get("action") or ""
    bodies.append(await (await twilio.post(action, {"CallSid": direct["Sid"],
                                                    "Digits": code})).text())
    repeat = gathers(bodies[-1])[0].get("action") or ""
    bodies.append(await (await twilio.post(repeat, {"CallSid": direct["Sid"],
                                                    "Digits": "1"})).text())
    for body in bodies:
        urls = list(twiml_urls(body))
        assert urls, body  # each of these documents continues at a URL of ours
        for url in urls:
            assert_under_public(url)


async def test_switchboard_call_has_no_machine_detection_direct_call_only_in_background(
        tw: Services, fake: FakeTwilio, twilio: Twilio, clock: Clock) -> None:
    ref = await share(tw, password="voice", call_at="2026-11-24 10:00")
    _, switchboard = await placed_call(tw, fake, clock, SWITCHBOARD)
    assert switchboard["SendDigits"] == "wwww123"
    # A switchboard's recorded greeting must not be judged: no detection of any kind.
    assert not {"MachineDetection", "AsyncAmd", "AsyncAmdStatusCallback"} & set(switchboard)

    direct = next(c for c in fake.calls if c["To"] == "+447911123456")
    assert "SendDigits" not in direct
    assert direct["MachineDetection"] == "Enable" and direct["AsyncAmd"] == "true"
    assert_under_public(direct["AsyncAmdStatusCallback"])

    # The call speaks at once (no AnsweredBy yet); a machine verdict afterwards ends nothing.
    sid = direct["Sid"]
    answer = await (await twilio.post(direct["Url"], {"CallSid": sid})).text()
    assert gathers(answer) and "<Hangup" not in answer.split("<Gather")[0]
    verdict = await twilio.post(direct["AsyncAmdStatusCallback"],
                                {"CallSid": sid, "AnsweredBy": "machine_start"})
    assert verdict.status == 204
    code, first_phrase = await call_code(tw, ref)
    # A person judged a machine by mistake still gets the password with the right code.
    action = gathers(answer)[0].get("action") or ""
    assert first_phrase in await (await twilio.post(action, {"CallSid": sid,
                                                             "Digits": code})).text()


async def test_machine_verdict_explains_a_call_that_ended_without_the_code(
        tw: Services, fake: FakeTwilio, twilio: Twilio, clock: Clock) -> None:
    ref, direct = await placed_call(tw, fake, clock, dict(RECIPIENT))
    sid = direct["Sid"]
    answer = await (await twilio.post(direct["Url"], {"CallSid": sid})).text()
    _, first_phrase = await call_code(tw, ref)
    assert first_phrase not in answer
    await twilio.post(direct["AsyncAmdStatusCallback"],
                      {"CallSid": sid, "AnsweredBy": "machine_end_beep"})
    await twilio.post(direct["StatusCallback"], {"CallSid": sid, "CallStatus": "completed"})
    d = await row(tw, ref, "voice")
    assert d.status == "due" and "answering machine picked up" in receipts(tw)

    # The same call with no verdict, a person who never keys the code in: said so.
    clock.advance(minutes=16)
    await dispatch.run_due(tw)
    second = fake.calls[-1]
    assert second["Sid"] != sid
    await twilio.post(second["StatusCallback"], {"CallSid": second["Sid"],
                                                 "CallStatus": "completed"})
    assert "the right code was not keyed in" in receipts(tw)


async def test_six_digit_prompt_does_not_ask_for_hash(
        tw: Services, fake: FakeTwilio, twilio: Twilio, clock: Clock) -> None:
    _, call = await placed_call(tw, fake, clock, SWITCHBOARD)
    form = {"CallSid": call["Sid"]}
    answer = await (await twilio.post(call["Url"], form)).text()
    action = gathers(answer)[0].get("action") or ""
    wrong = await (await twilio.post(action, {**form, "Digits": "000000"})).text()
    six: list[Any] = [g for body in (answer, wrong) for g in gathers(body)
                      if g.get("numDigits") == "6"]
    assert len(six) == 4  # twice per document: the ask, and once more after silence
    for gather in six:
        spoken = " ".join(say.text or "" for say in gather.iter("Say")).lower()
        assert "six digit code" in spoken and "hash" not in spoken and "#" not in spoken
