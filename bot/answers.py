"""Answers as channels carry them, encoded and decoded in one place for every channel.

A reply that asks names its question; a control that can hold a string (a Slack button's
value) carries :func:`encode` of (question, value), and :func:`decode` reads it back. An
answer to an :class:`~bot.replies.ApprovalRequest` is read with :func:`approval_answer`, a
typed :class:`Decision` on a reference: no channel builds or parses approval question ids.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

APPROVAL_QUESTION = "approval:"  # + reference: the question an approval answer names
COMMAND_QUESTION = "command:"  # + command: a button that runs a command on a reference

# Not in a question id or an option value a control carries (JSON escapes can carry them).
_NOT_IN_ANSWERS = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


class Decision(StrEnum):
    """An approver's answer to an approval request (the values of its options)."""

    APPROVE = "approve"
    REJECT = "reject"


@dataclass(frozen=True)
class ApprovalAnswer:
    """An answer to an approval request: the reference as it came (not yet checked), and
    the decision, or None when the value is neither decision."""

    reference: str
    decision: Decision | None


def approval_question(reference: str) -> str:
    """The question id an answer to ``reference``'s approval request names."""
    return APPROVAL_QUESTION + reference


def approval_reference(question: str) -> str | None:
    """The reference an answer to an approval request names (as it came, not yet checked),
    or None when ``question`` is any other question."""
    return question.removeprefix(APPROVAL_QUESTION) \
        if question.startswith(APPROVAL_QUESTION) else None


def approval_answer(question: str, value: object) -> ApprovalAnswer | None:
    """``value`` read as a decision on an approval request, or None when ``question`` is
    not an approval request's."""
    reference = approval_reference(question)
    if reference is None:
        return None
    decision = Decision(value) if isinstance(value, str) and value in set(Decision) else None
    return ApprovalAnswer(reference, decision)


def command_question(command: str) -> str:
    """The question id a button naming a command carries (its value is the reference): a
    press is read as typing ``command REF`` (:func:`command_answer`)."""
    return COMMAND_QUESTION + command


def command_answer(question: str | None, value: object) -> tuple[str, str] | None:
    """(command, reference as it came) when an answer is a press of a command button, else
    None; the caller checks both."""
    if question is None or not question.startswith(COMMAND_QUESTION) \
            or not isinstance(value, str):
        return None
    return question.removeprefix(COMMAND_QUESTION), value


def encode(question: str, value: str, *, confirmed: bool = False) -> str:
    """One string carrying ``value`` as the answer to ``question``; ``confirmed`` when the
    control asks the person to confirm on the platform before it is sent (read back with
    :func:`confirmed`)."""
    data: dict[str, object] = {"q": question, "v": value}
    if confirmed:
        data["c"] = 1
    return json.dumps(data, separators=(",", ":"))


def confirmed(raw: Any) -> bool:
    """Whether :func:`encode` marked ``raw`` as confirmed on the platform already."""
    try:
        data = json.loads(raw)
    except (TypeError, ValueError, RecursionError):
        return False
    return isinstance(data, dict) and data.get("c") == 1 and decode(raw) is not None


def decode(raw: Any) -> tuple[str, str] | None:
    """The (question, value) that :func:`encode` wrote; None if ``raw`` is not one."""
    try:
        data = json.loads(raw)
    except (TypeError, ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    question, value = data.get("q"), data.get("v", "")
    if not isinstance(question, str) or not isinstance(value, str) \
            or _NOT_IN_ANSWERS.search(question + value):
        return None
    return question, value
