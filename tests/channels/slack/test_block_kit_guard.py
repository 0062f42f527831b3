"""The Block Kit guard (:mod:`tests.support.block_kit`): it catches what Slack would refuse,
the fake Slack runs it on every payload it receives, and a conversation with the longest
answers a sender can give still sends only payloads within Slack's limits."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from tests.channels.slack.test_flow import CONSENT, RECIPIENT
from tests.support import block_kit
from tests.support.core import PDF, PURPOSE
from tests.support.fake_slack import TOKEN, FakeSlack
from tests.support.slack import Workspace, message_text


def section(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}, **extra}


def button(action_id: str, value: str = "v", label: str = "Go") -> dict[str, Any]:
    return {"type": "button", "action_id": action_id, "value": value,
            "text": {"type": "plain_text", "text": label}}


GOOD_MESSAGE = [section("*Recipient*"), {"type": "actions", "block_id": "q",
                                         "elements": [button("yes"), button("no")]}]
GOOD_VIEW = {"type": "modal", "callback_id": "recipient",
             "title": {"type": "plain_text", "text": "Recipient"},
             "submit": {"type": "plain_text", "text": "Save"},
             "close": {"type": "plain_text", "text": "Cancel"},
             "blocks": [{"type": "input", "block_id": "name",
                         "label": {"type": "plain_text", "text": "Name"},
                         "element": {"type": "plain_text_input", "action_id": "v"}}]}


def test_good_payloads_pass() -> None:
    assert block_kit.problems("chat.postMessage",
                              {"text": "Recipient", "blocks": GOOD_MESSAGE}) == []
    assert block_kit.problems("views.open", {"view": GOOD_VIEW}) == []


@pytest.mark.parametrize(("blocks", "text", "expected"), [
    ([section("x" * 3001)], "t", "3000"),
    ([section(f"{n}") for n in range(51)], "t", "51 blocks"),
    ([{"type": "actions", "elements": [button("a"), button("a")]}], "t", "'a' used twice"),
    ([{"type": "actions", "elements": [button("a" * 256)]}], "t", "action_id"),
    ([{"type": "actions", "elements": [button("a", value="v" * 2001)]}], "t", "value"),
    ([{"type": "actions", "elements": [button("a", label="L" * 76)]}], "t", "75"),
    ([section("a", block_id="b"), section("c", block_id="b")], "t", "'b' used twice"),
    ([section("")], "t", "empty text"),
    ([section("a", colour="red")], "t", "unknown key .colour"),
    ([{"type": "banner", "text": "a"}], "t", "unknown block type"),
    ([{"type": "actions", "elements": [{"type": "slider", "action_id": "a"}]}], "t",
     "not understood"),
    (GOOD_MESSAGE, "", "no fallback text"),
    (GOOD_MESSAGE, "t" * 2001, "fallback text"),
    ([], "t" * 4001, "4000"),
])
def test_the_guard_catches_what_slack_refuses(blocks: list[dict[str, Any]], text: str,
                                              expected: str) -> None:
    found = block_kit.problems("chat.postMessage", {"text": text, "blocks": blocks})
    assert any(expected in problem for problem in found), found


@pytest.mark.parametrize(("change", "expected"), [
    (lambda v: v["title"].update(text="Recipient details, please"), "title"),
    (lambda v: v["submit"].update(text="Save these details and go on"), "submit"),
    (lambda v: v["close"].update(text="Cancel and forget all this"), "close"),
    (lambda v: v.pop("submit"), "no submit button"),
    (lambda v: v.update(blocks=v["blocks"] * 101), "101 blocks"),
    (lambda v: v.update(private_metadata="m" * 3001), "private_metadata"),
    (lambda v: v["blocks"][0].update(label={"type": "plain_text", "text": "L" * 2001}),
     "label"),
])
def test_the_guard_catches_bad_modals(change: Any, expected: str) -> None:
    view = copy.deepcopy(GOOD_VIEW)
    change(view)
    found = block_kit.problems("views.open", {"view": view})
    assert any(expected in problem for problem in found), found


async def test_the_fake_slack_fails_a_test_that_sends_a_bad_payload() -> None:
    fake = await FakeSlack().start()
    try:
        client = AsyncWebClient(token=TOKEN, base_url=f"{fake.url}/api/")
        await client.chat_postMessage(channel="DUALICE01", text="ok", blocks=GOOD_MESSAGE)
        fake.assert_block_kit()
        await client.chat_postMessage(channel="DUALICE01", text="long",
                                      blocks=[section("x" * 3001)])
        await client.views_open(trigger_id="tr", view={**GOOD_VIEW, "title": {
            "type": "plain_text", "text": "A title far too long for Slack"}})
    finally:
        await fake.close()
    with pytest.raises(AssertionError) as failure:
        fake.assert_block_kit()
    assert "chat.postMessage: block 0 (section)" in str(failure.value)
    assert "views.open: modal title" in str(failure.value)


async def test_the_longest_answers_stay_within_slacks_limits(workspace: Workspace) -> None:
    """Many files with long names, a long purpose and recipient: every message, update and
    modal of the walk to the summary, the approval request and its decision is one Slack
    accepts."""
    fake = workspace.fake
    alice = workspace.user("UALICE01")
    long_name = "Referral " + "long-description-" * 12
    await alice.send_files(*[(f"{long_name}{n}.pdf", PDF) for n in range(20)])
    await alice.click("RESTRICTED")
    await alice.tick("Contact details only", "Other personal data")
    recipient: dict[str, str | list[str]] = {
        **RECIPIENT, "job_title": "Designated Safeguarding Lead " * 3,
        "organisation": "Northfield and District NHS Foundation Trust " * 2}
    assert await alice.submit(await alice.open_form(), recipient) == {}
    await alice.say(PURPOSE + " " + "More about why this is needed. " * 30)
    await alice.click("UK GDPR Art 6(1)(e) public task")
    consent: dict[str, str | list[str]] = {
        key: value if isinstance(value, str) else list(value) for key, value in CONSENT.items()}
    assert await alice.submit(await alice.open_form(), consent) == {}
    await alice.click("Encrypted archive")
    await alice.click("SMS once receipt is confirmed")
    assert "Please check transfer" in message_text(alice.last)
    await alice.click("Confirm and send")
    assert "needs authorising" in alice.text
    boss = workspace.user("UBOSS01")
    await boss.click("Approve")
    assert "Approved by <@UBOSS01>" in message_text(boss.last)
    sent = [c for c in fake.calls if c.method in block_kit.MESSAGE_METHODS
            | block_kit.VIEW_METHODS]
    assert len(sent) > 10 and any(c.method == "views.open" for c in sent)
    fake.assert_block_kit()
