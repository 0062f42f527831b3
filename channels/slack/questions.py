"""The open-question memory: per person, the last question message the bot posted with
buttons or a picker, so that a question answered by typing is updated in place as a click
would update it (its controls replaced by the answer).

It is kept in memory, ids only (about 200 bytes a person), the longest-unused forgotten
first. After a restart, or on another replica, a question's buttons simply stay, and a late
click on them is answered as any stale click is.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

KEPT = 10_000  # people whose open question message is remembered


@dataclass(frozen=True, eq=False)  # compared by identity: see OpenQuestions.forget
class OpenQuestion:
    """A message asking ``question`` with controls: where it is."""

    channel: str
    ts: str
    question: str


class OpenQuestions:
    def __init__(self, kept: int = KEPT) -> None:
        self.kept = kept
        self._asked: collections.OrderedDict[str, OpenQuestion] = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._asked)

    def remember(self, user: str, asked: OpenQuestion) -> None:
        self._asked[user] = asked
        self._asked.move_to_end(user)
        if len(self._asked) > self.kept:
            self._asked.popitem(last=False)

    def get(self, user: str) -> OpenQuestion | None:
        return self._asked.get(user)

    def forget(self, user: str, asked: OpenQuestion) -> None:
        """Forget ``asked``, unless a newer question has been posted since."""
        if self._asked.get(user) is asked:
            del self._asked[user]

    def forget_message(self, user: str, ts: str) -> None:
        """The message ``ts`` was answered: forget it if it is the one remembered."""
        asked = self._asked.get(user)
        if asked is not None and asked.ts == ts:
            del self._asked[user]
