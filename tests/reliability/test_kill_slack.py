"""`safehaven serve` with Slack, killed (SIGKILL) mid-download and between the
acknowledgement and the processing of a message, then started again.

Slack never resends a message it had a 200 for, so without the inbox
(:mod:`channels.slack.inbox`) both would be lost without a word. After the restart (once the
killed process's short lease has lapsed): the
message whose work had begun (the file being downloaded) is not acted on twice, and its
sender is told it may not have been acted on; the message that had only been acknowledged
is acted on; a retry of either by Slack changes nothing; the partial download is deleted
by the orphan clean-up; the inbox is empty once the work is done.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import signal
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from bot.messages import conversation as cmsg
from handlers import recovery
from handlers.services import Services
from store.models import Transfer
from store.repositories import slack_inbox
from tests.reliability.test_faults import env_for, output, safehaven, uploads, wait_for
from tests.support.fake_slack import TOKEN, FakeSlack
from tests.support.slack import SECRET, message_text, signed

ALICE, DM = "UALICE01", "DALICE01"
RESTARTED = "restarted while it was handling your message"
LEASE = 2  # seconds (SLACK_INBOX_LEASE_SECONDS): a dead process's messages wait this long


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    slack = await FakeSlack().start()
    yield slack
    slack.release.set()
    await slack.close()


def event_body(event_id: str, **event: Any) -> str:
    ts = f"{time.time():.6f}"
    return json.dumps({
        "token": "legacy", "team_id": "T0001", "api_app_id": "A0001",
        "type": "event_callback", "event_id": event_id, "event_time": int(time.time()),
        "event": {"type": "message", "channel": DM, "channel_type": "im", "user": ALICE,
                  "ts": ts, "event_ts": ts, **event},
        "authorizations": [{"team_id": "T0001", "user_id": "UBOT0000", "is_bot": True}]})


class Server:
    def __init__(self, services: Services, fake: FakeSlack) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = env_for(services.settings, SLACK_BOT_TOKEN=TOKEN,
                           SLACK_SIGNING_SECRET=SECRET, SLACK_API_URL=f"{fake.url}/api/",
                           SAFEHAVEN_PORT=str(self.port), SAFEHAVEN_SCHEDULER="off",
                           SLACK_INBOX_LEASE_SECONDS=str(LEASE))

    async def start(self) -> Any:
        proc = await safehaven(self.env, "serve")

        async def healthy() -> bool:
            try:
                async with aiohttp.ClientSession() as session, \
                        session.get(self.base + "/healthz") as response:
                    return response.status == 200
            except aiohttp.ClientError:
                assert proc.returncode is None, output(proc, ".err")[-3000:]
                return False

        await wait_for(healthy, 30, "serve to start", every=0.05)
        return proc

    async def post(self, body: str) -> int:
        async with aiohttp.ClientSession() as session, session.post(
                self.base + "/slack/events", data=body.encode(),
                headers={"Content-Type": "application/json", **signed(body)}) as response:
            return response.status


def said(fake: FakeSlack) -> list[str]:
    return [message_text(m) for m in fake.in_channel(DM)]


async def in_hand(services: Services) -> list[str]:
    """The owners of the inbox's rows: one per message acknowledged and not finished."""
    return [owner for _seq, owner, _status, _until in await slack_inbox.held(services.db)]


async def inbox_empty(services: Services) -> bool:
    return not await in_hand(services)


async def test_killed_mid_download_and_before_processing_then_restarted(
        services: Services, fake: FakeSlack) -> None:
    server = Server(services, fake)
    content = os.urandom(4 * 1024 * 1024)
    url = fake.add_file(content, stall_after=1024 * 1024)
    files = [{"id": "F0000001", "name": "case-notes.pdf", "size": len(content),
              "mimetype": "application/pdf", "url_private_download": url}]
    with_file = event_body("Ev0001FILE", subtype="file_share", text="", files=files)
    help_asked = event_body("Ev0002HELP", text="help")

    first = await server.start()
    assert await server.post(with_file) == 200
    await wait_for(lambda: fake.stalled == 1, 30, "the download to be under way")
    await wait_for(lambda: any(p.stat().st_size >= 1024 * 1024 for p in
                               uploads(services.settings)), 30, "a partial download on disk")
    assert await server.post(help_asked) == 200  # acknowledged; queued behind the download
    held = await in_hand(services)
    assert len(held) == 2 and len(set(held)) == 1, held  # both, held by the one process
    assert said(fake) == []  # nothing acted on yet
    first.send_signal(signal.SIGKILL)
    await first.wait()
    assert first.returncode == -signal.SIGKILL
    fake.release.set()  # Slack serves the file whole from now on

    second = await server.start()
    try:
        async def handled() -> bool:
            return len(said(fake)) >= 2 and await inbox_empty(services)

        await wait_for(handled, 30, "both messages handled after the restart")
        told = said(fake)
        # The download had begun: not acted on twice (no transfer, no second download); its
        # sender told. The help message had only been acknowledged: answered, once.
        assert RESTARTED in told[0], told
        assert cmsg.HELP.splitlines()[0] in told[1], told
        assert len(told) == 2, told
        assert len(fake.called("download")) == 1
        # Slack retrying either (its 200 lost on the way) changes nothing.
        assert await server.post(with_file) == 200
        assert await server.post(help_asked) == 200
        await wait_for(functools.partial(inbox_empty, services), 10, "the retries handled")
        await asyncio.sleep(0.5)
        assert len(said(fake)) == 2 and len(fake.called("download")) == 1
        assert await inbox_empty(services)
        async with services.db.read() as session:
            assert await session.scalar(select(func.count()).select_from(Transfer)) == 0
    finally:
        second.send_signal(signal.SIGINT)
        await second.wait()
    assert "Traceback" not in output(second, ".err"), output(second, ".err")[-3000:]

    # The partial download the killed process left: deleted once nothing could still be
    # writing it (the orphan clean-up's hour, made to have passed).
    left = uploads(services.settings)
    assert left and all(path.stat().st_size < len(content) for path in left)
    old = time.time() - recovery.ORPHAN_UPLOAD_SECONDS - 1
    for path in left:
        os.utime(path, (old, old))
    assert await recovery.delete_orphan_uploads(services) == len(left)
    assert uploads(services.settings) == []
