"""Information-sharing agreements in the conversation, on the engine's clock: the sender's
summary and the "needs authorising" message say why, the approver's card carries the same
reason, and the shipped NHS agreement lapses the day after its review-by date in the
organisation's time zone (the clock here is the services' clock, not the machine's)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bot.messages import agreements as agreements_msg
from bot.replies import ApprovalRequest
from handlers.services import Services
from tests.support.core import RECIPIENT, Clock, answer_all

NO_AGREEMENT = ("No information-sharing agreement covers northfield-law.co.uk for CONTROLLED "
                "data; a manager must authorise it.")


def approval_cards(services: Services, user_id: str) -> list[ApprovalRequest]:
    notifier: Any = services.notifier
    return [r for r in notifier.for_user(user_id) if isinstance(r, ApprovalRequest)]


async def test_the_sender_and_the_approver_see_why(services: Services, conversation: Any,
                                                   make_file: Any) -> None:
    chat = conversation("console:alice")
    await chat.send_files(make_file("a.pdf"))
    await answer_all(chat, recipient=dict(RECIPIENT, email="p.shah@northfield-law.co.uk",
                                          organisation="NHS health and care partners"))
    assert f"Why: {NO_AGREEMENT}" in chat.text  # the summary, before confirming
    await chat.say("confirm")
    assert "needs authorising" in chat.text and NO_AGREEMENT in chat.text
    (card,) = approval_cards(services, "console:manager")
    facts = {f.label: f.value for f in card.facts()}
    assert facts[agreements_msg.FACT_REASON] == NO_AGREEMENT


async def test_a_covered_share_needs_no_approver_and_names_the_agreement(
        services: Services, conversation: Any, make_file: Any) -> None:
    chat = conversation("console:alice")
    await chat.send_files(make_file("a.pdf"))
    await answer_all(chat)  # priya.shah@nhs.net, contact details: the NHS agreement
    assert ('Approval: not needed: covered by the information-sharing agreement "NHS health '
            'and care partners" (ISA-2025-004)') in chat.text
    await chat.say("confirm")
    assert "needs authorising" not in chat.text
    assert approval_cards(services, "console:manager") == []


async def test_the_agreement_lapses_the_day_after_review_by_on_the_engines_clock(
        services: Services, clock: Clock, conversation: Any, make_file: Any) -> None:
    """The shipped NHS agreement's review_by is 2027-11-30: live all that day in London,
    absent from midnight."""
    clock.now = datetime(2027, 11, 30, 23, 50, tzinfo=UTC)  # 23:50 GMT, still the 30th
    alice = conversation("console:alice")
    await alice.send_files(make_file("a.pdf"))
    await answer_all(alice)
    assert "Approval: not needed: covered by" in alice.text

    clock.now = datetime(2027, 12, 1, 0, 10, tzinfo=UTC)
    bob = conversation("console:bob")
    await bob.send_files(make_file("b.pdf"))
    await answer_all(bob)
    lapsed = ('The information-sharing agreement "NHS health and care partners" with NHS '
              "organisations on NHSmail (integrated care board and partner trusts) was due for "
              "review by 2027-11-30 and has lapsed, so it no longer covers nhs.net")
    assert lapsed in bob.text
    await bob.say("confirm")
    assert "needs authorising" in bob.text
    (card,) = approval_cards(services, "console:manager")
    assert lapsed in {f.label: f.value for f in card.facts()}[agreements_msg.FACT_REASON]
