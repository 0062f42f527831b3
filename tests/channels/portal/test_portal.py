"""The recipient portal over real HTTP: previews, limits, expiry, revocation, wrong tokens,
rate limits, headers, receipts and the scheduler's clean-up."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import secrets
from typing import Any

import pyzipper
from aiohttp.test_utils import TestClient, TestServer

from bot.app.web import create_app
from bot.replies import FileReply, LinkReply
from channels.portal import RATE_LIMITER, PortalLimits, PortalRateLimiter
from handlers import housekeeping
from handlers.conversation import cancel_by_sender
from handlers.services import Services
from store import audit
from tests.channels.portal.conftest import (
    MB,
    Share,
    SharedLink,
    archive_kept,
    audit_rows,
    download_settled,
    link_row,
    outbox_password,
    put_archive,
    remove_archive,
    transfer_row,
)
from tests.support.core import Clock

Client = TestClient[Any, Any]


def opens_with(data: bytes, password: str) -> list[str]:
    with pyzipper.AESZipFile(io.BytesIO(data)) as zf:
        zf.setpassword(password.encode())
        names = zf.namelist()
        for name in names:
            zf.read(name)
    return names


async def not_found_body(client: Client) -> bytes:
    resp = await client.get("/p/" + secrets.token_urlsafe(32))
    assert resp.status == 404
    return await resp.read()


async def test_sender_gets_link_email_text_and_limits(services: Services, share: Share) -> None:
    link = await share()
    replies = link.chat.last.replies if link.chat.last else []
    assert not any(isinstance(r, FileReply) for r in replies)
    assert any(isinstance(r, LinkReply) for r in replies)
    assert link.url.startswith(f"{services.settings.public_url}/p/")
    assert len(link.token) >= 43  # 32 random bytes, URL-safe base64
    text = link.chat.text
    assert f"Subject: CONFIDENTIAL {link.reference}" in text
    assert f"download {link.reference}.zip from this secure link:\n{link.url}" in text
    assert "Attached is" not in text
    assert "for 3 downloads" in text and "Thu 26 Nov 2026 09:30 (Europe/London)" in text
    assert f"cancel {link.reference}" in text
    password = outbox_password(services, link.reference)
    assert password and password not in text

    row = await link_row(services, link.reference)
    assert row.token_hash == hashlib.sha256(link.token.encode()).hexdigest()
    assert row.download_limit == 3 and row.downloads == 0
    records = await audit_rows(services, link.reference)
    dumped = json.dumps([r.details for r in records])
    assert link.token not in dumped and row.token_hash not in dumped
    assert "portal_link_created" in [r.action for r in records]


async def test_previews_never_consume_then_download_opens(services: Services, share: Share,
                                                          client: Client) -> None:
    link = await share()
    for _ in range(8):
        page = await client.get(link.path)
        assert page.status == 200
        head = await client.head(link.path)
        assert head.status == 200 and await head.read() == b""
    html = await page.text()
    assert "Example County Council" in html and link.reference in html
    assert "Thu 26 Nov 2026 09:30" in html and "3 of 3" in html
    assert '<form method="post">' in html and "<script" not in html
    assert (await link_row(services, link.reference)).downloads == 0

    resp = await client.post(link.path)
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/zip"
    assert resp.headers["Content-Disposition"] == f'attachment; filename="{link.reference}.zip"'
    data = await resp.read()
    assert int(resp.headers["Content-Length"]) == len(data)
    password = outbox_password(services, link.reference)
    assert password is not None
    assert {"document-1.pdf", "document-2.txt"} <= set(opens_with(data, password))
    assert (await link_row(services, link.reference)).downloads == 1
    assert "2 of 3" in await (await client.get(link.path)).text()


async def test_download_limit_holds_even_concurrently(services: Services, share: Share,
                                                      client: Client) -> None:
    link = await share()
    answers = await asyncio.gather(*(client.post(link.path) for _ in range(7)))
    statuses = [r.status for r in answers]
    assert sorted(statuses) == [200, 200, 200, 404, 404, 404, 404]
    assert (await link_row(services, link.reference)).downloads == 3
    await asyncio.gather(*(r.read() for r in answers))
    await download_settled(services, link.reference, times=3)
    gone = await client.get(link.path)
    assert gone.status == 404 and await gone.read() == await not_found_body(client)
    assert (await client.post(link.path)).status == 404
    downloads = [r for r in await audit_rows(services, link.reference)
                 if r.action == "downloaded"]
    assert [r.details["download"] for r in downloads] == [1, 2, 3]


async def test_expiry_holds(services: Services, share: Share, client: Client,
                            clock: Clock) -> None:
    link = await share()
    clock.advance(hours=71, minutes=59)
    assert (await client.get(link.path)).status == 200
    clock.advance(minutes=1)  # exactly 72 h: the link has expired
    expired = await client.get(link.path)
    assert expired.status == 404 and await expired.read() == await not_found_body(client)
    assert (await client.post(link.path)).status == 404
    assert (await link_row(services, link.reference)).downloads == 0


async def test_cancel_revokes_the_link(services: Services, share: Share,
                                       client: Client) -> None:
    link = await share()
    assert (await client.get(link.path)).status == 200
    await link.chat.cancel(link.reference)
    assert "is cancelled" in link.chat.text
    revoked = await client.get(link.path)
    assert revoked.status == 404 and await revoked.read() == await not_found_body(client)
    assert (await client.post(link.path)).status == 404
    assert (await link_row(services, link.reference)).revoked_at is not None
    actions = [r.action for r in await audit_rows(services, link.reference)]
    assert "portal_link_revoked" in actions and "downloaded" not in actions


async def test_admin_cancel_revokes_too(services: Services, share: Share,
                                        client: Client) -> None:
    link = await share(password="sms-on-receipt")
    text = await cancel_by_sender(services, reference=link.reference, user_id=None)
    assert "is cancelled" in text
    assert (await client.post(link.path)).status == 404
    revoked = [r for r in await audit_rows(services, link.reference)
               if r.action == "portal_link_revoked"]
    assert revoked and revoked[0].actor == "admin"


async def test_wrong_tokens_all_get_the_same_answer(share: Share, client: Client) -> None:
    link = await share()
    expected = await not_found_body(client)
    flipped = link.token[:-1] + ("A" if link.token[-1] != "A" else "B")
    for path in ("/p/" + flipped, "/p/" + link.token[:-1], "/p/" + link.token + "x",
                 "/p/", "/p/short", "/p/a/b", "/p/%00%ff", "/p/" + "A" * 500):
        for method in ("GET", "POST"):
            resp = await client.request(method, path)
            assert resp.status == 404, (method, path)
            assert await resp.read() == expected, (method, path)
            assert resp.headers["Cache-Control"] == "no-store"
    assert (await client.get(link.path)).status == 200


async def test_rate_limit_per_token_and_per_ip(services: Services, share: Share) -> None:
    link = await share()
    now = [0.0]
    app = create_app(services, migrate=False, scheduler=False)
    app[RATE_LIMITER] = PortalRateLimiter(
        PortalLimits(per_token=4, per_ip=6, window_seconds=60), clock=lambda: now[0])
    async with TestClient(TestServer(app)) as client:
        await _rate_limited(services, link, client, now)


async def _rate_limited(services: Services, link: SharedLink, client: Client,
                        now: list[float]) -> None:
    for _ in range(4):
        assert (await client.head(link.path)).status == 200
    limited = await client.post(link.path)
    assert limited.status == 429 and int(limited.headers["Retry-After"]) == 60
    assert "Too many requests" in await limited.text()
    assert limited.headers["Cache-Control"] == "no-store"
    assert (await link_row(services, link.reference)).downloads == 0  # 429 consumed nothing
    # Other links from the same address are still served, up to the per-IP limit.
    assert (await client.get("/p/" + secrets.token_urlsafe(32))).status == 404
    assert (await client.get("/p/" + secrets.token_urlsafe(32))).status == 404
    assert (await client.get("/p/" + secrets.token_urlsafe(32))).status == 429
    now[0] = 61.0  # the window slides on
    assert (await client.post(link.path)).status == 200
    assert (await link_row(services, link.reference)).downloads == 1


async def test_security_headers_on_every_answer(share: Share, client: Client) -> None:
    link = await share()
    answers = [await client.get(link.path), await client.head(link.path),
               await client.get("/p/nope"), await client.post(link.path)]
    for resp in answers:
        csp = resp.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
        assert "form-action 'self'" in csp and "style-src 'sha256-" in csp
        assert "script-src" not in csp and "unsafe-inline" not in csp
        assert resp.headers["Referrer-Policy"] == "no-referrer"
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["X-Frame-Options"] == "DENY"
        assert resp.headers["Cache-Control"] == "no-store"
        await resp.read()
    assert answers[0].headers["Content-Type"] == "text/html; charset=utf-8"


async def test_first_download_releases_the_password_and_tells_the_sender(
        services: Services, share: Share, client: Client) -> None:
    link = await share(password="sms-on-receipt")
    assert "as soon as the recipient first downloads" in link.chat.text
    assert "as soon as you have downloaded the file" in link.chat.text
    assert outbox_password(services, link.reference) is None
    for _ in range(5):
        await client.get(link.path)
    assert outbox_password(services, link.reference) is None  # previews are not receipts
    assert (await transfer_row(services, link.reference)).password_sealed is not None

    resp = await client.post(link.path, headers={"User-Agent": "Mozilla/5.0 (Recipient)"})
    data = await resp.read()
    await download_settled(services, link.reference)
    password = outbox_password(services, link.reference)
    assert password is not None
    assert opens_with(data, password)
    assert (await transfer_row(services, link.reference)).password_sealed is None

    records = await audit_rows(services, link.reference)
    downloaded = next(r for r in records if r.action == "downloaded")
    assert downloaded.details["ip"] == "127.0.0.1"
    assert downloaded.details["user_agent"] == "Mozilla/5.0 (Recipient)"
    assert downloaded.at == services.clock()
    receipt = next(r for r in records if r.action == "receipt_confirmed")
    assert receipt.details == {"by": "portal download"} and receipt.seq > downloaded.seq
    notifier: Any = services.notifier
    told = " ".join(getattr(r, "text", "") for r in notifier.for_user("console:alice"))
    assert f"Transfer {link.reference} was downloaded" in told and "1 of 3" in told
    assert "password was texted" in told or "texted" in told

    await (await client.post(link.path)).read()  # a second download sends nothing more
    await download_settled(services, link.reference, times=2)
    text = services.settings.outbox_path.read_text()
    assert text.count(f"the password for {link.reference} is") == 1
    async with services.db.read() as s:
        assert (await audit.verify(s)).ok


async def test_scheduler_deletes_used_up_and_expired_archives(
        services: Services, share: Share, client: Client, clock: Clock) -> None:
    used = await share()
    expired = await share()
    unused = await share(password="sms-on-receipt")
    used_path = (await transfer_row(services, used.reference)).archive_path
    expired_path = (await transfer_row(services, expired.reference)).archive_path
    unused_path = (await transfer_row(services, unused.reference)).archive_path
    assert used_path and expired_path and unused_path
    for _ in range(3):
        await (await client.post(used.path)).read()
    await (await client.post(expired.path)).read()
    await download_settled(services, used.reference, times=3)
    await download_settled(services, expired.reference)

    await housekeeping.tick(services)
    assert not await archive_kept(services, used.reference)
    assert await archive_kept(services, expired.reference)
    assert (await transfer_row(services, used.reference)).archive_path is None

    clock.advance(hours=72)
    await housekeeping.tick(services)
    for link in (used, expired, unused):
        assert not await archive_kept(services, link.reference)
    await housekeeping.tick(services)  # nothing twice

    reasons = {}
    for link in (used, expired, unused):
        records = await audit_rows(services, link.reference)
        deleted = [r for r in records if r.action == "archive_deleted"]
        assert len(deleted) == 1
        reasons[link.reference] = deleted[0].details["reason"]
    assert reasons == {used.reference: "download limit reached",
                       expired.reference: "expired", unused.reference: "expired"}
    assert [r.action for r in await audit_rows(services, used.reference)].count(
        "downloaded") == 3  # the record stays
    # A link that expired unused ends the transfer: no password will ever go.
    row = await transfer_row(services, unused.reference)
    assert row.status == "expired" and row.password_sealed is None
    assert outbox_password(services, unused.reference) is None
    notifier: Any = services.notifier
    told = " ".join(getattr(r, "text", "") for r in notifier.for_user("console:alice"))
    assert f"link for transfer {expired.reference} has expired after 1 of 3" in told
    assert f"link for transfer {unused.reference} expired without being used" in told
    async with services.db.read() as s:
        assert (await audit.verify(s)).ok


async def test_cancelled_transfer_archive_is_deleted(services: Services, share: Share) -> None:
    link = await share()
    await link.chat.cancel(link.reference)
    await housekeeping.tick(services)
    assert not await archive_kept(services, link.reference)
    deleted = [r for r in await audit_rows(services, link.reference)
               if r.action == "archive_deleted"]
    assert deleted[0].details["reason"] == "transfer cancelled"


async def test_a_missing_archive_is_not_counted(services: Services, share: Share,
                                                client: Client) -> None:
    link = await share()
    await remove_archive(services, link.reference)
    assert (await client.post(link.path)).status == 404
    assert (await link_row(services, link.reference)).downloads == 0


async def test_download_streams_in_constant_memory(services: Services, share: Share,
                                                   client: Client) -> None:
    import tracemalloc

    link = await share()
    size = 48 * MB
    await put_archive(services, link.reference, megabytes=size // MB, fill=secrets.token_bytes)
    tracemalloc.start()
    try:
        resp = await client.post(link.path)
        received = 0
        async for chunk in resp.content.iter_chunked(64 * 1024):
            received += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert received == size
    assert peak < 8 * 1024 * 1024, peak
