"""A fake Twilio REST API: a real aiohttp server on 127.0.0.1, port 0, recording every
message and call; failures can be queued to test retries. Also seeds due deliveries in bulk
(shared by the tests and bench/deliveries.py)."""

from __future__ import annotations

import asyncio
import base64
import itertools
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.vault import Vault
from store.db import Database
from store.models import Delivery, Transfer

ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "test-auth-token-0123456789abcdef"


@dataclass
class FakeTwilio:
    messages: list[dict[str, str]] = field(default_factory=list)
    calls: list[dict[str, str]] = field(default_factory=list)
    failures: list[tuple[int, int, str]] = field(default_factory=list)  # status, code, msg
    times: list[float] = field(default_factory=list)  # monotonic arrival of each success
    delay: float = 0.0  # seconds to stall before answering (to provoke client timeouts)
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    server: TestServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    def fail_next(self, status: int, code: int = 20500, message: str = "error",
                  times: int = 1) -> None:
        self.failures += [(status, code, message)] * times

    def duplicates(self) -> int:
        counts = Counter(m["Body"] for m in self.messages)
        return sum(n - 1 for n in counts.values() if n > 1)

    def _check_auth(self, request: web.Request) -> None:
        expected = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            raise web.HTTPUnauthorized()

    async def _create(self, request: web.Request, kind: str) -> web.Response:
        self._check_auth(request)
        form = {k: str(v) for k, v in (await request.post()).items()}
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
        self.times.append(time.monotonic())
        return web.json_response({"sid": sid, "status": "queued", "account_sid": ACCOUNT_SID,
                                  "to": form.get("To")}, status=201)

    async def messages_handler(self, request: web.Request) -> web.Response:
        return await self._create(request, "messages")

    async def calls_handler(self, request: web.Request) -> web.Response:
        return await self._create(request, "calls")

    async def start(self) -> FakeTwilio:
        app = web.Application()
        base = f"/2010-04-01/Accounts/{ACCOUNT_SID}"
        app.router.add_post(f"{base}/Messages.json", self.messages_handler)
        app.router.add_post(f"{base}/Calls.json", self.calls_handler)
        self.server = TestServer(app, host="127.0.0.1", port=0)
        await self.server.start_server()
        return self

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()


async def seed_due_sms(db: Database, vault: Vault, *, count: int, now: datetime,
                       sender: str = "console:alice") -> list[str]:
    """Insert ``count`` packaged transfers, each with one SMS delivery due now."""
    refs = [f"SH-{i:04d}-ZZ" for i in range(count)]
    async with db.transaction() as session:
        session.add_all(Transfer(
            reference=ref, sender_id=sender, status="ready", classification="CONTROLLED",
            recipient={"name": "Priya Shah", "phone": "+447911123456",
                       "phone_display": "+44 7911 123456", "email": "p@nhs.net"},
            password_method="sms", file_count=1, total_bytes=1, created_at=now,
            updated_at=now, password_sealed=vault.seal(f"Pw-{ref}", reference=ref),
        ) for ref in refs)
        await session.flush()
        session.add_all(Delivery(reference=ref, kind="sms", status="due", due_at=now,
                                 phone="+447911123456", attempts=0, code_failures=0,
                                 created_at=now, updated_at=now) for ref in refs)
    return refs
