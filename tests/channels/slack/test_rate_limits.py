"""Slack rate-limiting the bot for a while, under a burst of conversations: every message
is still answered, exactly once, once Slack lets the calls through."""

from __future__ import annotations

import asyncio

from tests.support.slack import Workspace, message_text


async def test_a_sustained_rate_limit_loses_and_duplicates_nothing(
        workspace: Workspace) -> None:
    people = [workspace.user(f"UPERSON{i:02d}") for i in range(30)]
    refusals = 120  # four for each message, more than the SDK's own three retries
    workspace.fake.fail("chat.postMessage", status=429, retry_after="0.01", times=refusals)
    statuses = await asyncio.gather(*(p.say("help", settle=False) for p in people))
    assert set(statuses) == {200}
    await workspace.settle()
    for person in people:
        said = [message_text(m) for m in person.messages()]
        assert len(said) == 1 and said[0].startswith("I package"), (person.id, said)
    assert len(workspace.fake.called("chat.postMessage")) == len(people) + refusals
