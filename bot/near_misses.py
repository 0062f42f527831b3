"""Near misses: what Safe Haven refused that could have become a breach, as data for the
audit trail (seed 002: "Monitoring Information Breaches and near misses").

A near miss is recorded once per event as an audit record with action :data:`NEAR_MISS`,
its :class:`NearMissKind`, the reason (a refusal enum's value, never a sentence holding
what was typed), who tried and the transfer reference when there is one. The refused value
itself (an email address, a phone number, a file name, the digits of a call code) is never
recorded: a refused address or number may be kept only as a keyed fingerprint
(:func:`fingerprint`, HMAC-SHA256 under a key derived from the server secret), so repeats
of the same one can be told apart from different ones without the record saying what it was.

The engine returns near misses with a turn (:attr:`bot.state.StepResult.near_misses`) and the
handler that saves the turn appends them in its transaction. Forged webhook requests are not
recorded one by one (a flood would flood the chain and queue on its serialised appends):
channels count them in :class:`ForgedRequests`, and the scheduler writes one counted record
per channel and interval (:func:`handlers.near_misses.flush_forged`). Counts held in memory
when a process dies are lost; the channel's log line for each refused request remains.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

NEAR_MISS = "near_miss"
"""The audit action of every near miss (refused look-ups of references keep their own,
``access_refused``: :mod:`handlers.access`)."""

FINGERPRINT_LABEL = b"safehaven near-miss fingerprint"
"""The info under which the fingerprint key is derived from the server key."""


class NearMissKind(StrEnum):
    """What was refused."""

    RECIPIENT_REFUSED = "recipient_refused"  # webmail, generic mailbox, list, invalid
    FILE_REFUSED = "file_refused"            # blocked kind, disguised, bomb, too big, ...
    SELF_APPROVAL = "self_approval"          # a sender deciding their own transfer
    NOT_APPROVER = "not_approver"            # someone not listed deciding a transfer
    FORGED_REQUEST = "forged_request"        # webhooks failing their signature (counted)
    WRONG_CALL_CODE = "wrong_call_code"      # a wrong code keyed in on the password call


class WebhookChannel(StrEnum):
    """The channels whose inbound requests are authenticated, and counted when forged."""

    SLACK = "slack"
    TEAMS = "teams"
    TWILIO = "twilio"


@dataclass(frozen=True)
class NearMiss:
    """One near miss. ``facts`` are further details safe to record (the form field, the
    file's detected kind, the attempt number). ``subject`` is the refused value itself,
    only for :func:`fingerprint`: it is never recorded, nor shown by ``repr``."""

    kind: NearMissKind
    reason: str
    reference: str | None = None
    facts: Mapping[str, str | int] = field(default_factory=dict)
    subject: str | None = field(default=None, repr=False)

    def details(self, key: bytes | None) -> dict[str, str | int]:
        """The audit record's details: kind, reason, facts, and the subject's keyed
        fingerprint when there is a subject and a ``key``."""
        details: dict[str, str | int] = {"kind": self.kind.value, "reason": self.reason,
                                         **self.facts}
        if self.subject and key is not None:
            details["fingerprint"] = fingerprint(key, self.subject)
        return details


def fingerprint(key: bytes, value: str) -> str:
    """A keyed fingerprint of a refused value: the same value (ignoring case and surrounding
    space) always gives the same fingerprint under one key, and without the key nobody can
    test a guess against it. 128 bits, hex."""
    normal = value.strip().casefold().encode("utf-8")
    return hmac.new(key, normal, hashlib.sha256).hexdigest()[:32]


@dataclass
class ForgedCount:
    """Refused requests on one channel since the last record: how many, first and last."""

    count: int
    first: datetime
    last: datetime


class ForgedRequests:
    """Counts forged webhook requests per channel in this process, in memory, until the
    scheduler records them. Counting is a dictionary update: a flood costs nothing more.
    :meth:`totals` keeps counting since the process started (for /metrics: a monotonic
    counter, which recording does not reset)."""

    def __init__(self) -> None:
        self._counts: dict[WebhookChannel, ForgedCount] = {}
        self._totals: dict[WebhookChannel, int] = dict.fromkeys(WebhookChannel, 0)

    def count(self, channel: WebhookChannel, at: datetime) -> None:
        """One more refused request on ``channel``, at ``at``."""
        self._totals[channel] += 1
        held = self._counts.get(channel)
        if held is None:
            self._counts[channel] = ForgedCount(1, at, at)
        else:
            held.count += 1
            held.last = max(held.last, at)

    def take(self) -> dict[WebhookChannel, ForgedCount]:
        """The counts so far, and start counting afresh."""
        taken, self._counts = self._counts, {}
        return taken

    def give_back(self, taken: Mapping[WebhookChannel, ForgedCount]) -> None:
        """Put counts that could not be recorded back, merged with any counted since."""
        for channel, held in taken.items():
            now = self._counts.get(channel)
            if now is None:
                self._counts[channel] = held
            else:
                self._counts[channel] = ForgedCount(now.count + held.count,
                                                    min(now.first, held.first),
                                                    max(now.last, held.last))

    def totals(self) -> dict[WebhookChannel, int]:
        """Requests refused on each channel since this process started (every channel
        present, 0 for none)."""
        return dict(self._totals)

    def pending(self) -> int:
        """Requests counted and not yet recorded, on all channels."""
        return sum(held.count for held in self._counts.values())
