"""What a password call says and asks, neutral of any telephony provider.

``handlers/password_sends/calls.py`` decides each step of a call as a list of these actions;
``channels/twilio`` renders them (as TwiML), as chat channels render ``bot/replies.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class GatherStep(StrEnum):
    """Where the call continues once the recipient has keyed digits in."""

    CODE = "code"  # the code the sender was given, before the password is read out
    REPEAT = "repeat"  # "press 1 to hear it again"


@dataclass(frozen=True)
class Say:
    text: str


@dataclass(frozen=True)
class Pause:
    seconds: int


@dataclass(frozen=True)
class Gather:
    """Collect keypad digits, then continue at ``step``."""

    step: GatherStep
    digits: int
    prompt: tuple[Say | Pause, ...]
    timeout_seconds: int = 10


@dataclass(frozen=True)
class Hangup:
    pass


CallAction = Say | Pause | Gather | Hangup
