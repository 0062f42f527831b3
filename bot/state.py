"""A conversation's saved state, and what one turn of the engine takes and gives back.

:class:`State` is everything answered so far (stored as JSON between turns);
:class:`TurnContext` is what a turn may know besides it; :class:`StepResult` is what a turn
returns: the replies, the new state, the audit entries to append and the effects to run
(:data:`Effect`), which the caller saves in one transaction and only then runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from bot.entries import Consent, FileEntry, Recipient
from bot.filecheck import FileVerdict
from bot.near_misses import NearMiss
from bot.policy_rules import Level, Policy
from bot.replies import Reply
from bot.statuses import DeliveryMethod, PasswordMethod, Step


@dataclass
class State:
    """Everything answered so far in one conversation; stored as JSON between turns."""

    step: Step = Step.IDLE
    reference: str | None = None
    files: list[FileEntry] = field(default_factory=list)
    last_file_at: str | None = None
    classification: str | None = None
    # The policy's information category keys the sender chose (several may apply); None
    # until answered (and in state saved before the question existed).
    information_categories: tuple[str, ...] | None = None
    recipient: Recipient | None = None
    recipient_draft: dict[str, str] | None = None
    purpose: str | None = None
    lawful_basis: str | None = None
    consent: Consent | None = None
    delivery: DeliveryMethod | None = None
    password_method: PasswordMethod | None = None
    call_at: str | None = None
    history: list[Step] = field(default_factory=list)
    # The reference the sender asked to cancel, waiting for their yes or no; the question
    # on ``step`` stays open.
    cancel_pending: str | None = None
    # Where the phone question (Step.PHONE) returns once answered.
    return_to: Step | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> State:
        if not data:
            return cls()
        known = {f for f in cls.__dataclass_fields__}
        state = cls(**{k: v for k, v in data.items() if k in known})
        # JSON holds the words; the state holds the members they name.
        state.step = Step(state.step)
        state.history = [Step(s) for s in state.history]
        state.return_to = Step(state.return_to) if state.return_to else None
        if state.information_categories is not None:  # JSON holds a list
            state.information_categories = tuple(state.information_categories)
        state.delivery = DeliveryMethod(state.delivery) if state.delivery else None
        state.password_method = (PasswordMethod(state.password_method)
                                 if state.password_method else None)
        return state

    @property
    def total_bytes(self) -> int:
        return sum(int(f["size"]) for f in self.files)


@dataclass(frozen=True)
class TurnContext:
    """What a turn may know besides the state: policy, clock, who is talking, and the
    verdicts on newly received files by upload path (a file without one is refused)."""

    policy: Policy
    now: datetime
    user_id: str
    default_region: str
    new_reference: Callable[[], str]
    known_recipients: Sequence[Mapping[str, str]] = ()
    file_verdicts: Mapping[str, FileVerdict] = field(default_factory=dict)


def chosen_level(state: State, ctx: TurnContext) -> Level:
    """The policy level of the classification the sender chose (asked before anything
    that needs it)."""
    assert state.classification is not None
    return ctx.policy.level(state.classification)


@dataclass(frozen=True)
class AuditEntry:
    action: str
    reference: str | None
    details: dict[str, Any]


@dataclass(frozen=True)
class DeleteFiles:
    """Delete uploads (sealed objects' keys) that will never be packaged."""

    paths: tuple[str, ...]


@dataclass(frozen=True)
class SubmitTransfer:
    """The sender confirmed: record the transfer, then ask for approval or package it."""

    reference: str


@dataclass(frozen=True)
class CancelTransfer:
    reference: str


Effect = DeleteFiles | SubmitTransfer | CancelTransfer


@dataclass
class StepResult:
    replies: list[Reply]
    state: State
    audit: list[AuditEntry] = field(default_factory=list)
    effects: list[Effect] = field(default_factory=list)
    error: str | None = None  # set when the answer was refused and the question re-asked
    stale: bool = False  # the answer named a question no longer asked (changed nothing)
    # The sender confirmed cancelling this transfer, not the conversation's own: the caller
    # cancels it after saving the turn and says what that did before ``replies``.
    cancel_other: str | None = None
    near_misses: list[NearMiss] = field(default_factory=list)  # recorded with the turn
