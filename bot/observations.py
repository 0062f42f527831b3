"""Neutral hooks through which the core reports how long things took, for monitoring.

Handlers call an :class:`Observations` (``Services.observations``) and know nothing of how
it is recorded; the composition root plugs in the Prometheus one when ``SAFEHAVEN_METRICS``
is on (``bot/app/metrics.py``), and the default records nothing. A hook takes only values
from a fixed set (an enum) and a number: never a user id, a reference or anything typed, so
no label a monitoring system keeps can carry personal data.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol


class UserChannel(StrEnum):
    """Where a user's turn came from, by the prefix of their id (``slack:U…``)."""

    SLACK = "slack"
    TEAMS = "teams"
    CONSOLE = "console"
    OTHER = "other"  # any other prefix: kept out of the label as typed


def user_channel(user_id: str) -> UserChannel:
    """The channel a user id belongs to; :attr:`UserChannel.OTHER` for an unknown prefix."""
    prefix = user_id.partition(":")[0]
    try:
        return UserChannel(prefix)
    except ValueError:
        return UserChannel.OTHER


class Observations(Protocol):
    """What the core reports as it runs. Each call must be cheap (no I/O)."""

    def turn_taken(self, channel: UserChannel, seconds: float) -> None:
        """A conversation turn from ``channel`` took ``seconds`` (failed turns included)."""


class NoObservations:
    """Records nothing: the default, when metrics are off."""

    def turn_taken(self, channel: UserChannel, seconds: float) -> None:
        return None
