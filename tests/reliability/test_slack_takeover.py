"""Two `safehaven serve` replicas, A and B, on one database, each with its own var/: A
acknowledges a file DM (its download stalled) and a `help` queued behind it, and is killed
(SIGKILL). B, running all along and never restarted, takes both over once A's lease lapses:
the file message, whose work A had begun, is not acted on twice and its sender is told so,
once; `help` is answered, once; the inbox is empty."""

from __future__ import annotations

import functools
import os
import re
import signal
from pathlib import Path

from sqlalchemy import func, select

from bot.messages import conversation as cmsg
from handlers.services import Services
from store.models import Transfer
from tests.reliability.test_faults import output, wait_for
from tests.reliability.test_kill_slack import (
    LEASE,
    RESTARTED,
    Server,
    event_body,
    fake,  # noqa: F401 (the fixture)
    in_hand,
    inbox_empty,
    said,
)
from tests.support.fake_slack import FakeSlack


async def test_a_live_replica_takes_over_a_killed_one_s_messages_without_a_restart(
        services: Services, fake: FakeSlack, tmp_path: Path) -> None:  # noqa: F811
    a, b = Server(services, fake), Server(services, fake)
    b.env["SAFEHAVEN_VAR_DIR"] = str(tmp_path / "replica-b" / "var")  # a disk of its own
    content = os.urandom(2 * 1024 * 1024)
    url = fake.add_file(content, stall_after=512 * 1024)
    files = [{"id": "F0000001", "name": "case-notes.pdf", "size": len(content),
              "mimetype": "application/pdf", "url_private_download": url}]
    with_file = event_body("Ev0001FILE", subtype="file_share", text="", files=files)
    help_asked = event_body("Ev0002HELP", text="help")

    first, second = await a.start(), await b.start()
    try:
        assert await a.post(with_file) == 200
        await wait_for(lambda: fake.stalled == 1, 30, "A's download to be under way")
        assert await a.post(help_asked) == 200  # acknowledged; queued behind the download
        held = await in_hand(services)
        assert len(held) == 2 and len(set(held)) == 1, held
        assert said(fake) == []
        first.send_signal(signal.SIGKILL)
        await first.wait()
        killed = fake.release  # Slack would serve the file whole to anyone now
        killed.set()

        async def taken_over() -> bool:
            return len(said(fake)) >= 2 and await inbox_empty(services)

        # Within the lease and B's next look (a sixth of it), with time to spare for CI.
        await wait_for(taken_over, LEASE * 5, "B to take over A's messages", every=0.05)
        assert second.returncode is None  # B was never restarted
        told = said(fake)
        assert RESTARTED in told[0], told  # the file message's sender is told, once
        assert cmsg.HELP.splitlines()[0] in told[1], told
        await wait_for(functools.partial(inbox_empty, services), 5, "the inbox empty")
        assert len(said(fake)) == 2, said(fake)
        assert len(fake.called("download")) == 1  # only A's, cut short: not downloaded again
        async with services.db.read() as session:
            assert await session.scalar(select(func.count()).select_from(Transfer)) == 0
        taken = re.findall(r"taking over (\d+) Slack message", output(second, ".err"))
        assert sum(map(int, taken)) == 2, taken  # (in one look or two: leases end apart)
    finally:
        if second.returncode is None:
            second.send_signal(signal.SIGINT)
        await second.wait()
    assert "Traceback" not in output(second, ".err"), output(second, ".err")[-3000:]
