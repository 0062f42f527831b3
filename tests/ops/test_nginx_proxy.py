"""deploy/nginx/safehaven.conf, run by Debian's real nginx in front of a real `safehaven serve`
process: TLS ends at nginx, the app is served under /safehaven, and through it signed Slack
requests are accepted (forged ones refused), Twilio's signed webhooks (an SMS reply, and a
call through the code step to the spoken password) validate against the public URL with its
prefix, and a portal download streams. The portal records the recipient's address from
X-Forwarded-For only when SAFEHAVEN_TRUSTED_PROXIES names the proxy, and never what a client
wrote there itself. /metrics never reaches serve through nginx; portal tokens stay out of
nginx's access log.

The example file is used as it is, except what a test host must change (each replacement
checked): its listening ports and addresses, the upstream port, the certificate (made here,
self-signed for 127.0.0.1, and trusted by the test's client) and the log paths. The
recipient's machine is 127.0.0.2, a loopback address other than nginx's own 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import ipaddress
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from bot.passwords import spell_for_voice
from bot.replies import LinkReply
from channels.twilio.settings import load_twilio_settings
from channels.twilio.transport import TwilioTransport
from handlers.password_sends import dispatch
from handlers.services import Services
from store.models import AuditRecord, PasswordSend, SmsOptOut, Transfer
from tests.support.core import Clock, Conversation, answer_all
from tests.support.fake_slack import TOKEN, FakeSlack
from tests.support.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from tests.support.slack import SECRET, signed

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "deploy" / "nginx" / "safehaven.conf"
NGINX = Path("/usr/sbin/nginx")
PREFIX = "/safehaven"
RECIPIENT_HOST = "127.0.0.2"  # the recipient's machine, as nginx and serve see it
SPOOFED = "203.0.113.9"  # what a client writes into X-Forwarded-For itself
FROM_NUMBER = "+441632960001"
_FOREIGN = ("SAFEHAVEN_", "TWILIO_", "SLACK_", "TEAMS_", "AWS_")

pytestmark = pytest.mark.skipif(not NGINX.exists(),
                                reason="nginx is not installed (scripts/setup installs it)")


def free_port() -> int:
    """A port free now (nginx cannot be given port 0): bound, read, released."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, and its key (PEM files)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "safehaven test proxy")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


def render(*, https_port: int, http_port: int, upstream_port: int, cert: Path, key: Path,
           access_log: Path) -> str:
    """The example with only a test host's differences replaced, each exactly as often as
    the example has it (a reshaped example fails here rather than going untested)."""
    text = EXAMPLE.read_text(encoding="utf-8")
    swaps = [
        ("    listen 80;\n    listen [::]:80;\n", f"    listen 127.0.0.1:{http_port};\n", 1),
        ("    listen 443 ssl http2;  # nginx 1.25.1 and later: \"listen 443 ssl;\" and "
         "\"http2 on;\"\n    listen [::]:443 ssl http2;\n",
         f"    listen 127.0.0.1:{https_port} ssl http2;\n", 1),
        ("server 127.0.0.1:3978;", f"server 127.0.0.1:{upstream_port};", 1),
        ("ssl_certificate /etc/ssl/safehaven/fullchain.pem;", f"ssl_certificate {cert};", 1),
        ("ssl_certificate_key /etc/ssl/safehaven/privkey.pem;",
         f"ssl_certificate_key {key};", 1),
        ("access_log /var/log/nginx/safehaven.access.log safehaven;",
         f"access_log {access_log} safehaven;", 2),
    ]
    for old, new, times in swaps:
        assert text.count(old) == times, f"the example no longer has {old!r} {times}x"
        text = text.replace(old, new)
    return text


def main_config(folder: Path, site: Path) -> Path:
    """nginx's own configuration for a test: everything in ``folder``, in the foreground;
    the example goes in its http block, as /etc/nginx/conf.d/ files do."""
    temp = "\n".join(f"    {kind}_temp_path {folder / kind};"
                     for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    user = "user root root;\n" if os.geteuid() == 0 else ""  # else workers would be nobody
    path = folder / "nginx.conf"
    path.write_text(
        f"{user}daemon off;\nworker_processes 1;\npid {folder / 'nginx.pid'};\n"
        f"error_log {folder / 'error.log'} warn;\nevents {{ worker_connections 128; }}\n"
        f"http {{\n{temp}\n    access_log off;\n    include {site};\n}}\n", encoding="utf-8")
    return path


async def wait_until(check: Callable[[], Any], what: str, *, tries: int = 600) -> None:
    """Poll ``check`` (sync or async) every 0.05 s until it is true; generous, not timed."""
    for _ in range(tries):
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what}")


@dataclass
class Stack:
    """nginx (``public``: its https base with the prefix) in front of serve (``direct``)."""

    public: str
    direct: str
    tls: ssl.SSLContext
    access_log: Path
    serve_output: Path

    def client(self, *, host: str = RECIPIENT_HOST) -> aiohttp.ClientSession:
        """A client on ``host`` (a loopback address), trusting the test certificate."""
        return aiohttp.ClientSession(connector=aiohttp.TCPConnector(
            ssl=self.tls, local_addr=(host, 0), force_close=True))


def text_of(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def prepare_nginx(folder: Path, upstream_port: int) -> tuple[list[str], int, Path]:
    """The certificate and configuration in ``folder``, checked by ``nginx -t``: the command
    that runs it, its https port and its access log."""
    folder.mkdir()
    cert, key = self_signed(folder)
    https_port, http_port = free_port(), free_port()
    access_log = folder / "access.log"
    site = folder / "safehaven.conf"
    site.write_text(render(https_port=https_port, http_port=http_port,
                           upstream_port=upstream_port, cert=cert, key=key,
                           access_log=access_log), encoding="utf-8")
    conf = main_config(folder, site)
    command = [str(NGINX), "-p", str(folder), "-e", str(folder / "error.log"), "-c", str(conf)]
    tested = subprocess.run([*command, "-t"], capture_output=True, text=True, timeout=60,
                            check=False)
    assert tested.returncode == 0, tested.stderr
    return command, https_port, access_log


@contextlib.asynccontextmanager
async def running_nginx(folder: Path, upstream_port: int) -> AsyncIterator[tuple[str, Path]]:
    command, https_port, access_log = prepare_nginx(folder, upstream_port)
    process = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.DEVNULL,
                                                   stderr=asyncio.subprocess.DEVNULL)

    async def listening() -> bool:
        assert process.returncode is None, text_of(folder / "error.log")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", https_port)
        except OSError:
            return False
        writer.close()
        return True

    try:
        await wait_until(listening, "nginx to listen")
        yield f"https://127.0.0.1:{https_port}", access_log
    finally:
        process.send_signal(signal.SIGQUIT)  # graceful: finish, then stop
        try:
            await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:
            process.kill()
            await process.wait()


@contextlib.asynccontextmanager
async def running_serve(env: dict[str, str], output: Path) -> AsyncIterator[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN)}
    full.update(env)
    with output.open("ab") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.app.cli", "serve", cwd=ROOT, env=full, stdout=out,
            stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{env['SAFEHAVEN_PORT']}"

    async def ready() -> bool:
        assert process.returncode is None, text_of(output)
        try:
            async with aiohttp.ClientSession() as session, \
                    session.get(base + "/readyz") as response:
                return response.status == 200
        except aiohttp.ClientError:
            return False

    try:
        await wait_until(ready, "serve to be ready", tries=1200)
        yield base
    finally:
        process.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:
            process.kill()
            await process.wait()


@pytest.fixture
async def fakes(clock: Clock) -> AsyncIterator[tuple[FakeSlack, FakeTwilio]]:
    slack = await FakeSlack().start()
    twilio = await FakeTwilio(clock=clock).start()
    yield slack, twilio
    await twilio.close()
    await slack.close()


StackFactory = Callable[..., contextlib.AbstractAsyncContextManager[Stack]]


@pytest.fixture
def stack(services: Services, fakes: tuple[FakeSlack, FakeTwilio], tmp_path: Path
          ) -> StackFactory:
    """``async with stack(trusted=...) as s``: serve on this test's database, object store,
    key and data folder (so the test process can set up transfers it then serves), with the
    fakes of Slack and Twilio, and nginx in front of it with the example configuration.
    The test's services are given Twilio and the same public URL."""
    slack, twilio = fakes

    @contextlib.asynccontextmanager
    async def make(*, trusted: str | None = "127.0.0.1/32") -> AsyncIterator[Stack]:
        serve_port = free_port()
        async with running_nginx(tmp_path / "nginx", serve_port) as (origin, access_log):
            public = origin + PREFIX
            settings = services.settings
            assert settings.secret_key
            env = {
                "SAFEHAVEN_VAR_DIR": str(settings.var_dir),
                "SAFEHAVEN_DATABASE_URL": settings.database_url,
                "SAFEHAVEN_SECRET_KEY": settings.secret_key,
                "SAFEHAVEN_PORT": str(serve_port), "SAFEHAVEN_SCHEDULER": "off",
                "SAFEHAVEN_PUBLIC_URL": public, "SAFEHAVEN_LOG_LEVEL": "WARNING",
                "SAFEHAVEN_METRICS": "on",
                "SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": SECRET,
                "SLACK_API_URL": f"{slack.url}/api/",
                "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
                "TWILIO_FROM_NUMBER": FROM_NUMBER, "TWILIO_API_URL": twilio.url,
            }
            if trusted is not None:
                env["SAFEHAVEN_TRUSTED_PROXIES"] = trusted
            twilio_settings = load_twilio_settings(env)
            assert twilio_settings is not None and twilio_settings.public_url == public
            transport = TwilioTransport(twilio_settings)
            services.transport = transport
            services.settings = dataclasses.replace(settings, public_url=public)  # links
            output = tmp_path / "serve.out"
            tls = ssl.create_default_context(cafile=str(tmp_path / "nginx" / "cert.pem"))
            try:
                async with running_serve(env, output) as direct:
                    yield Stack(public, direct, tls, access_log, output)
            finally:
                await transport.close()

    return make


# --- Slack ---------------------------------------------------------------------------------


async def test_slack_signed_requests_pass_and_forged_ones_are_refused(
        stack: StackFactory) -> None:
    async with stack() as s, s.client() as client:
        body = json.dumps({"type": "url_verification", "challenge": "through-nginx-42"})
        url = s.public + "/slack/events"
        headers = {"Content-Type": "application/json"}
        async with client.post(url, data=body.encode(), headers={**headers, **signed(body)}
                               ) as response:
            assert response.status == 200
            assert "through-nginx-42" in await response.text()
        for forged in ({}, signed(body, secret="not-the-signing-secret"),
                       signed(body.replace("42", "43"))):
            async with client.post(url, data=body.encode(), headers={**headers, **forged}
                                   ) as response:
                assert response.status == 401
        # A body over the limit stops at nginx.
        async with client.post(url, data=b"x" * (2 * 1024 * 1024), headers=headers
                               ) as response:
            assert response.status == 413


# --- Twilio --------------------------------------------------------------------------------


async def twilio_post(client: aiohttp.ClientSession, url: str, form: dict[str, str], *,
                      signed_for: str | None = None) -> tuple[int, str]:
    """Twilio's request: to exactly ``url``, signed for it (or for ``signed_for``)."""
    signature = RequestValidator(AUTH_TOKEN).compute_signature(signed_for or url, form)
    async with client.post(url, data=form, headers={"X-Twilio-Signature": signature}
                           ) as response:
        return response.status, await response.text()


def gather_action(twiml: str) -> str:
    gathers = list(ET.fromstring(twiml).iter("Gather"))
    assert gathers, twiml
    return gathers[0].get("action") or ""


async def test_twilio_sms_reply_and_voice_code_step_validate_against_the_prefixed_url(
        stack: StackFactory, services: Services, fakes: tuple[FakeSlack, FakeTwilio],
        clock: Clock, tmp_path: Path) -> None:
    _, twilio = fakes
    async with stack() as s, s.client() as client:
        # An SMS reply: signed for the public URL with its prefix, it is taken.
        inbound = s.public + "/twilio/sms/inbound"
        stop = {"From": "+447911123456", "To": FROM_NUMBER, "Body": "STOP",
                "AccountSid": ACCOUNT_SID, "MessageSid": "SM" + "0" * 32}
        origin = s.public.removesuffix(PREFIX)
        status, _ = await twilio_post(client, inbound, stop,
                                      signed_for=origin + "/twilio/sms/inbound")
        assert status == 403  # signed for the URL without the prefix: not Twilio's request
        async with services.db.read() as session:
            assert await session.get(SmsOptOut, "+447911123456") is None
        status, _ = await twilio_post(client, inbound, stop)
        assert status == 200
        async with services.db.read() as session:
            assert await session.get(SmsOptOut, "+447911123456") is not None

        # A password call, placed by this process (the worker's part), answered through nginx.
        chat = Conversation(services, "console:alice")
        document = tmp_path / "case.pdf"
        document.write_bytes(b"%PDF-1.4\n%%EOF\n")
        await chat.send_files(document)
        found = re.search(r"SH-[0-9A-Z]{4}-[0-9A-Z]{2}", chat.text)
        assert found
        reference = found.group(0)
        await answer_all(chat, password="voice", call_at="2026-11-24 10:00")
        await chat.say("confirm")
        clock.advance(days=1, minutes=31)
        await dispatch.run_due(services)
        assert twilio.calls, "no call placed"
        call = twilio.calls[-1]
        assert call["Url"].startswith(s.public + "/twilio/voice/")
        async with services.db.read() as session:
            transfer = await session.get(Transfer, reference)
        assert transfer is not None and transfer.call_code and transfer.password_sealed
        first_phrase = spell_for_voice(services.vault.open(
            transfer.password_sealed, reference=reference))[1]
        form = {"CallSid": call["Sid"], "AccountSid": ACCOUNT_SID}

        status, answer = await twilio_post(client, call["Url"], {**form, "CallStatus":
                                                                 "in-progress"})
        assert status == 200
        action = gather_action(answer)
        assert action.startswith(s.public + "/twilio/voice/") and action.endswith("/code")
        status, refused = await twilio_post(client, action, {**form, "Digits":
                                                              transfer.call_code},
                                            signed_for=origin + urlsplit(action).path
                                            .removeprefix(PREFIX))
        assert status == 403 and first_phrase not in refused
        status, spoken = await twilio_post(client, action, {**form, "Digits":
                                                            transfer.call_code})
        assert status == 200 and first_phrase in spoken
        status, _ = await twilio_post(client, call["StatusCallback"],
                                      {**form, "CallStatus": "completed"})
        assert status == 204
        async with services.db.read() as session:
            send = (await session.scalars(select(PasswordSend).where(
                PasswordSend.reference == reference, PasswordSend.kind == "voice"))).one()
        assert send.status == "delivered"


# --- the portal and the client's address ---------------------------------------------------


async def share_by_link(services: Services, folder: Path) -> tuple[str, str]:
    """A transfer shared by portal link, now; its reference and link."""
    services.clock = Clock(dt.datetime.now(dt.UTC))  # serve checks the link's expiry now
    chat = Conversation(services, "console:alice")
    document = folder / "case notes.pdf"
    document.write_bytes(b"%PDF-1.4\n%%EOF\n")
    await chat.send_files(document)
    await answer_all(chat, delivery="portal")
    turn = await chat.say("confirm")
    link = next(r for r in turn.replies if isinstance(r, LinkReply))
    found = re.search(r"SH-[0-9A-Z]{4}-[0-9A-Z]{2}", link.label)
    assert found
    return found.group(0), link.url


async def download(client: aiohttp.ClientSession, url: str,
                   headers: dict[str, str] | None = None) -> bytes:
    async with client.get(url, headers=headers) as page:
        assert page.status == 200 and "<form" in await page.text()
    async with client.post(url, headers=headers) as response:
        assert response.status == 200, await response.text()
        assert response.content_type == "application/zip"
        body = await response.read()
        assert len(body) == response.content_length and body[:2] == b"PK"
        return body


async def recorded_addresses(services: Services, reference: str, count: int) -> list[str]:
    """The ``ip`` of each download the server audited for ``reference`` (waits for
    ``count`` of them: the server records the end after the client has the last byte)."""

    async def rows() -> list[AuditRecord]:
        async with services.db.read() as session:
            return list((await session.scalars(select(AuditRecord).where(
                AuditRecord.reference == reference, AuditRecord.action == "downloaded")
                .order_by(AuditRecord.seq))).all())

    async def enough() -> bool:
        return len(await rows()) >= count

    await wait_until(enough, f"{count} downloads of {reference} to be recorded")
    return [str((row.details or {}).get("ip")) for row in await rows()]


async def test_portal_download_through_a_trusted_proxy_records_the_recipient(
        stack: StackFactory, services: Services, tmp_path: Path) -> None:
    async with stack(trusted="127.0.0.1/32") as s:
        reference, url = await share_by_link(services, tmp_path)
        assert url.startswith(s.public + "/p/")
        token = url.rsplit("/", 1)[1]
        async with s.client() as client:
            # Through nginx: the recipient's own address, whatever it wrote itself.
            await download(client, url)
            await download(client, url, headers={"X-Forwarded-For": SPOOFED})
        # Straight to serve (not through the trusted proxy): the header is not believed.
        async with s.client() as client:
            await download(client, s.direct + "/p/" + token,
                           headers={"X-Forwarded-For": SPOOFED})
        assert await recorded_addresses(services, reference, 3) == [RECIPIENT_HOST] * 3
        # Another spelling of the link reaches the portal (used up now: its one "not
        # available" page), and is redacted in the log too.
        async with s.client() as client, \
                client.get(url.replace(f"{PREFIX}/p/", f"{PREFIX}//p/")) as response:
            assert response.status == 404 and "nginx" not in await response.text()
        # nginx logs a request once it is done with it, after the client has the answer.
        await wait_until(lambda: text_of(s.access_log).count(f"{PREFIX}/p/<token>") >= 5,
                         "nginx to log the five portal requests")
        logged = text_of(s.access_log)
        assert logged.count(f"{PREFIX}/p/<token>") == 5 and token not in logged, logged


async def test_without_a_trusted_proxy_the_peer_is_the_client(
        stack: StackFactory, services: Services, tmp_path: Path) -> None:
    async with stack(trusted=None) as s:
        reference, url = await share_by_link(services, tmp_path)
        token = url.rsplit("/", 1)[1]
        async with s.client() as client:
            await download(client, url)  # nginx is the peer
            await download(client, s.direct + "/p/" + token,
                           headers={"X-Forwarded-For": SPOOFED})
        assert await recorded_addresses(services, reference, 2) == ["127.0.0.1",
                                                                    RECIPIENT_HOST]


# --- what stays private ---------------------------------------------------------------------


async def test_metrics_are_not_reachable_through_the_proxy(stack: StackFactory) -> None:
    async with stack() as s, s.client() as client:
        async with client.get(s.public + "/healthz") as response:
            assert response.status == 200  # the prefix reaches serve
        origin = s.public.removesuffix(PREFIX)
        for path in (f"{PREFIX}/metrics", f"{PREFIX}//metrics", f"{PREFIX}/./metrics",
                     f"{PREFIX}/%6Detrics", f"{PREFIX}/p/../metrics", f"{PREFIX}/metrics?x=1",
                     f"{PREFIX}/metrics/", "/metrics"):
            async with client.get(origin + path) as response:
                body = await response.text()
                assert response.status == 404, path
                assert "nginx" in body and "# TYPE" not in body, path  # nginx's own answer
        async with client.get(origin + f"{PREFIX}/healthz", allow_redirects=False) as response:
            assert response.headers.get("Strict-Transport-Security")
