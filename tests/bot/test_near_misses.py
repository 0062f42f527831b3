"""The near-miss data the engine returns and the counter the channels feed: a missing
recipient detail is no near miss, the refused value never shows (not even in ``repr``),
fingerprints need the key, and counts taken for a record that fails are not lost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.answer_checks import refused_recipient
from bot.near_misses import (
    ForgedRequests,
    NearMiss,
    NearMissKind,
    WebhookChannel,
    fingerprint,
)
from bot.policy import load_policy
from bot.state import TurnContext

T0 = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
FORM = {"name": "Priya Shah", "job_title": "Lead", "organisation": "Trust",
        "email": "priya.shah@nhs.net", "phone": "07911 123456"}


def context() -> TurnContext:
    return TurnContext(policy=load_policy(), now=T0, user_id="console:alice",
                       default_region="GB", new_reference=lambda: "SH-AAAA-22")


def test_refused_recipient_names_what_was_refused_and_not_what_was_missing() -> None:
    ctx = context()
    level = ctx.policy.level("CONTROLLED")
    found = refused_recipient({**FORM, "email": "x@hotmail.co.uk", "phone": "12"}, level, ctx,
                              "SH-AAAA-22")
    assert [(n.kind, n.reason, n.facts["field"]) for n in found] == [
        (NearMissKind.RECIPIENT_REFUSED, "webmail", "email"),
        (NearMissKind.RECIPIENT_REFUSED, "invalid phone number", "phone")]
    assert refused_recipient({**FORM, "email": " ", "phone": ""}, level, ctx, None) == []
    assert refused_recipient(FORM, level, ctx, None) == []
    # PUBLIC takes webmail: no near miss for an address that was not refused.
    public = ctx.policy.level("PUBLIC")
    assert refused_recipient({**FORM, "email": "x@hotmail.co.uk"}, public, ctx, None) == []


def test_the_refused_value_is_only_ever_a_keyed_fingerprint() -> None:
    miss = NearMiss(NearMissKind.RECIPIENT_REFUSED, "webmail", "SH-AAAA-22",
                    {"field": "email"}, subject="Priya.Private@Gmail.com")
    assert "gmail" not in repr(miss).lower()
    key, other_key = b"k" * 32, b"o" * 32
    details = miss.details(key)
    assert details == {"kind": "recipient_refused", "reason": "webmail", "field": "email",
                       "fingerprint": fingerprint(key, "priya.private@gmail.com ")}
    assert fingerprint(other_key, "priya.private@gmail.com") != details["fingerprint"]
    assert fingerprint(key, "priya.other@gmail.com") != details["fingerprint"]
    assert "fingerprint" not in miss.details(None)


def test_forged_requests_are_counted_per_channel_and_given_back_on_failure() -> None:
    counter = ForgedRequests()
    for n in range(5):
        counter.count(WebhookChannel.SLACK, T0 + timedelta(seconds=n))
    counter.count(WebhookChannel.TWILIO, T0)
    taken = counter.take()
    assert {c: h.count for c, h in taken.items()} == {WebhookChannel.SLACK: 5,
                                                      WebhookChannel.TWILIO: 1}
    assert taken[WebhookChannel.SLACK].last == T0 + timedelta(seconds=4)
    assert counter.pending() == 0
    counter.count(WebhookChannel.SLACK, T0 + timedelta(minutes=1))
    counter.give_back(taken)  # the record could not be written
    again = counter.take()
    assert again[WebhookChannel.SLACK].count == 6
    assert again[WebhookChannel.SLACK].first == T0
    assert again[WebhookChannel.SLACK].last == T0 + timedelta(minutes=1)
