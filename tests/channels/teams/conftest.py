"""The Teams fixture (:mod:`tests.support.teams`) for the Teams tests, and the card guard:
every message and card the bot sends in a Teams test is checked when the test ends, against
the official Adaptive Card schema of its version and what Teams documents
(:func:`tests.support.teams_render.sent_problems`; the browser half, rendering, is
tests/channels/teams/test_card_guard.py)."""

from collections.abc import Iterator

import pytest

from tests.support import fake_teams, teams_render
from tests.support.teams import teams  # noqa: F401 (fixture)


@pytest.fixture(autouse=True)
def every_card_checked() -> Iterator[None]:
    fake_teams.SENT.clear()
    yield
    problems = teams_render.sent_problems(fake_teams.SENT)
    fake_teams.SENT.clear()
    assert not problems, "a card or message Teams would not show as meant:\n" + "\n".join(
        problems)
