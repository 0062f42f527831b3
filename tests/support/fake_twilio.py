"""A fake Twilio REST API: a real aiohttp server on 127.0.0.1, port 0, recording every
message and call it accepts; failures can be queued to test retries; a request can be held
before it is accepted (Twilio slow: nothing sent) or accepted and then answered too late
(recorded first, then held past the client's timeout) or not at all (the connection dropped
mid-answer). It serves the Messages and Calls lists (filtered by ``To`` and ``DateSent>=`` /
``StartTime>=`` as Twilio does), recording each lookup. Also seeds due password sends in bulk
(shared by the tests and bench/deliveries.py)."""

from __future__ import annotations

import asyncio
import base64
import itertools
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from aiohttp import web

from bot.vault import Vault
from store.db import Database
from store.models import PasswordSend, Transfer
from tests.support.server import FakeServer

ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "test-auth-token-0123456789abcdef"
BASE = f"/2010-04-01/Accounts/{ACCOUNT_SID}"


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _rfc2822(when: datetime | None) -> str | None:
    return format_datetime(when.astimezone(UTC), usegmt=True) if when else None


def _since(value: str) -> datetime | None:
    """A ``DateSent>=`` / ``StartTime>=`` value: a date, or a date and time, in UTC."""
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(eq=False)
class FakeTwilio(FakeServer):
    messages: list[dict[str, str]] = field(default_factory=list)
    calls: list[dict[str, str]] = field(default_factory=list)
    failures: list[tuple[int, int, str]] = field(default_factory=list)  # status, code, msg
    times: list[float] = field(default_factory=list)  # monotonic arrival of each success
    delay: float = 0.0  # seconds to stall before answering (to provoke client timeouts)
    # What the next create requests do instead of answering at once, in order:
    # "stall" (held before accepting: nothing sent), "late" (accepted, then held: the
    # client gives up first), "drop" (accepted, then the connection closed unanswered).
    misbehave: list[str] = field(default_factory=list)
    list_failures: list[tuple[int, int, str]] = field(default_factory=list)
    lookups: list[dict[str, str]] = field(default_factory=list)  # each list request's query
    status: dict[str, str] = field(default_factory=dict)  # SID -> Twilio's status
    created: dict[str, datetime] = field(default_factory=dict)  # SID -> date_created
    clock: Callable[[], datetime] = _utc_now  # Twilio's clock (tests: the test clock)
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    _closing: asyncio.Event = field(default_factory=asyncio.Event)
    _release: asyncio.Event = field(default_factory=asyncio.Event)
    _accepted: asyncio.Condition = field(default_factory=asyncio.Condition)

    def __post_init__(self) -> None:
        FakeServer.__init__(self)
        self.app.router.add_post(f"{BASE}/Messages.json", self.messages_handler)
        self.app.router.add_post(f"{BASE}/Calls.json", self.calls_handler)
        self.app.router.add_get(f"{BASE}/Messages.json", self.messages_list)
        self.app.router.add_get(f"{BASE}/Calls.json", self.calls_list)
        self.app.router.add_get(f"{BASE}.json", self.account)

    def fail_next(self, status: int, code: int = 20500, message: str = "error",
                  times: int = 1) -> None:
        self.failures += [(status, code, message)] * times

    def stall_next(self, times: int = 1) -> None:
        """Hold the next create requests before accepting them, until the client gives up
        (Twilio slow or unreachable mid-request: nothing is sent)."""
        self.misbehave += ["stall"] * times

    def answer_late(self, times: int = 1) -> None:
        """Accept (record) the next create requests, then hold the answer until the client
        has given up: Twilio took the message, the client never hears so."""
        self.misbehave += ["late"] * times

    def drop_after_accepting(self, times: int = 1) -> None:
        """Accept the next create requests, then close the connection unanswered."""
        self.misbehave += ["drop"] * times

    def fail_lists(self, status: int = 503, code: int = 20503,
                   message: str = "Service Unavailable", times: int = 1) -> None:
        self.list_failures += [(status, code, message)] * times

    async def wait_accepted(self, count: int) -> None:
        """Until ``count`` messages and calls in all have been accepted."""
        async with self._accepted:
            await self._accepted.wait_for(lambda: len(self.messages) + len(self.calls) >= count)

    def duplicates(self) -> int:
        counts = Counter(m["Body"] for m in self.messages)
        return sum(n - 1 for n in counts.values() if n > 1)

    def sent_to(self, reference: str) -> int:
        """How many accepted messages name ``reference``."""
        return sum(1 for m in self.messages if reference in m.get("Body", ""))

    def _check_auth(self, request: web.Request) -> None:
        expected = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            raise web.HTTPUnauthorized()

    def release_held(self) -> None:
        """End the holds of answers accepted late now, by closing their connections
        unanswered (for tests that must act while the client is still waiting)."""
        self._release.set()

    async def _hold(self, *, releasable: bool = False) -> None:
        """Wait until the client disconnects (aiohttp then cancels the handler), or
        :meth:`release_held` (when ``releasable``); if the server closes first, give up
        without accepting anything more."""
        events = [self._closing, *([self._release] if releasable else [])]
        waiters = [asyncio.ensure_future(e.wait()) for e in events]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
        if self._closing.is_set():
            raise web.HTTPServiceUnavailable()

    async def _drop(self, request: web.Request) -> None:
        """Close the connection unanswered; aiohttp then cancels the handler."""
        assert request.transport is not None
        request.transport.close()
        await self._hold()

    async def _create(self, request: web.Request, kind: str) -> web.Response:
        self._check_auth(request)
        form = {k: str(v) for k, v in (await request.post()).items()}
        how = self.misbehave.pop(0) if self.misbehave else ""
        if how == "stall":
            await self._hold()
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.failures:
            status, code, message = self.failures.pop(0)
            return web.json_response({"code": code, "message": message, "status": status},
                                     status=status)
        prefix = "SM" if kind == "messages" else "CA"
        sid = f"{prefix}{next(self._ids):032x}"
        form["Sid"] = sid
        (self.messages if kind == "messages" else self.calls).append(form)
        self.status[sid] = "queued"
        self.created[sid] = self.clock()
        self.times.append(time.monotonic())
        async with self._accepted:
            self._accepted.notify_all()
        if how == "late":
            await self._hold(releasable=True)
        if how in ("late", "drop"):
            await self._drop(request)
        return web.json_response({"sid": sid, "status": "queued", "account_sid": ACCOUNT_SID,
                                  "to": form.get("To")}, status=201)

    async def messages_handler(self, request: web.Request) -> web.Response:
        return await self._create(request, "messages")

    async def calls_handler(self, request: web.Request) -> web.Response:
        return await self._create(request, "calls")

    async def _list(self, request: web.Request, kind: str) -> web.Response:
        self._check_auth(request)
        query = dict(request.query)
        self.lookups.append({"kind": kind, **query})
        if self.list_failures:
            status, code, message = self.list_failures.pop(0)
            return web.json_response({"code": code, "message": message, "status": status},
                                     status=status)
        since = _since(query.get("DateSent>" if kind == "messages" else "StartTime>", ""))
        records = self.messages if kind == "messages" else self.calls
        found = []
        for r in reversed(records):  # newest first, as Twilio lists them
            sid, created = r["Sid"], self.created[r["Sid"]]
            if query.get("To") and r.get("To") != query["To"]:
                continue
            if since is not None and created < since:
                continue
            item: dict[str, Any] = {
                "sid": sid, "account_sid": ACCOUNT_SID, "to": r.get("To"),
                "from": r.get("From"), "status": self.status[sid],
                "date_created": _rfc2822(created), "date_updated": _rfc2822(created)}
            if kind == "messages":
                item.update(body=r.get("Body", ""), date_sent=_rfc2822(created),
                            direction="outbound-api", error_code=None, num_segments="1")
            else:
                item.update(start_time=_rfc2822(created), direction="outbound-api")
            found.append(item)
        page_size = int(query.get("PageSize") or 50)
        return web.json_response({
            kind: found[:page_size], "page": 0, "page_size": page_size, "start": 0,
            "end": min(len(found), page_size), "first_page_uri": request.path_qs,
            "uri": request.path_qs, "next_page_uri": None, "previous_page_uri": None})

    async def account(self, request: web.Request) -> web.Response:
        """The account fetch (``safehaven doctor`` checks the credentials with it)."""
        self._check_auth(request)
        return web.json_response({"sid": ACCOUNT_SID, "friendly_name": "Test account",
                                  "status": "active", "type": "Full"})

    async def messages_list(self, request: web.Request) -> web.Response:
        return await self._list(request, "messages")

    async def calls_list(self, request: web.Request) -> web.Response:
        return await self._list(request, "calls")

    async def restart(self) -> None:
        """Serve again on the same port after :meth:`close` (Twilio back up)."""
        self._closing = asyncio.Event()
        await super().restart()

    async def close(self) -> None:
        self._closing.set()
        await super().close()


async def seed_due_sms(db: Database, vault: Vault, *, count: int, now: datetime,
                       sender: str = "console:alice", prefix: str = "SH") -> list[str]:
    """Insert ``count`` packaged transfers, each with one SMS send due now (references
    ``PREFIX-0000-ZZ`` onwards; give another prefix to seed more)."""
    refs = [f"{prefix}-{i:04d}-ZZ" for i in range(count)]
    async with db.transaction() as session:
        session.add_all(Transfer(
            reference=ref, sender_id=sender, status="ready", classification="CONTROLLED",
            recipient={"name": "Priya Shah", "phone": "+447911123456",
                       "phone_display": "+44 7911 123456", "email": "p@nhs.net"},
            password_method="sms", file_count=1, total_bytes=1, created_at=now,
            updated_at=now, password_sealed=vault.seal(f"Pw-{ref}", reference=ref),
        ) for ref in refs)
        await session.flush()
        session.add_all(PasswordSend(reference=ref, kind="sms", status="due", due_at=now,
                                     phone="+447911123456", attempts=0, code_failures=0,
                                     created_at=now, updated_at=now) for ref in refs)
    return refs
