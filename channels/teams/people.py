"""People by name in Teams messages: the core names people by their channel-qualified ids
(``teams:<Entra object id>``, ``slack:U…``), which mean nothing to a reader. Before a
reply is rendered, every such id in it becomes the person's name as Teams gave it to the
bot (the stored conversation reference of someone who has a chat with it), or neutral
words when the bot has never seen them ("your approver" where they are asked, "a
colleague" elsewhere); an id is never shown.

A name is chosen by the person it belongs to, so it is text, never formatting: it is put in
as given (its whitespace collapsed), and :mod:`channels.teams.cards` escapes every line it
renders (messages and TextBlocks alike), so a name like ``[Approved](https://…) **now**``
shows as typed rather than as a link or bold.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from bot.messages import teams as msg
from bot.replies import ApprovalRequest, Ask, Choice, Reply, Text
from channels.teams import records
from store.db import Database

# teams:<GUID> (or the channel account id Teams gives when there is none), slack:U…/W…
PERSON = re.compile(r"\b(?:teams:(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                    r"[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|\d+:[\w-]+)|slack:[UW][A-Z0-9]{2,})")


_ROLE_WORDS = ("approver ", "approvers ", "manager ")
_ASKED_WORDS = ("needed from ", "asked ", "Waiting for ")
_GONE = "\x00"


def _ids(replies: Sequence[Reply]) -> set[str]:
    found: set[str] = set()
    for reply in replies:
        for text in _texts(reply):
            found.update(m.group(0).lower() if m.group(0).startswith("teams:") else m.group(0)
                         for m in PERSON.finditer(text))
    return found


def _texts(reply: Reply) -> list[str]:
    if isinstance(reply, ApprovalRequest):
        return [reply.sender]
    if isinstance(reply, Text):
        return [reply.text]
    if isinstance(reply, Ask | Choice):
        return [reply.prompt]
    return []


def _named(text: str, names: dict[str, str]) -> str:
    def name(match: re.Match[str]) -> str:
        found = match.group(0)
        key = found.lower() if found.startswith("teams:") else found
        if key in names:
            return names[key]
        before = text[:match.start()]
        if before.endswith(_ROLE_WORDS):  # "your approver <id>": the role says it already
            return _GONE
        if before.endswith(_ASKED_WORDS):  # "needed from <id>", "I have asked <id>"
            return msg.YOUR_APPROVER
        # At the start of a sentence, "A colleague".
        before = before.rstrip(" *“\"")
        return msg.SOMEONE.capitalize() if not before or before[-1] in ".!?:\n" \
            else msg.SOMEONE
    return PERSON.sub(name, text).replace(" " + _GONE, "").replace(_GONE, "")


async def with_names(db: Database, replies: Sequence[Reply]) -> list[Reply]:
    """``replies`` with every person's id replaced by their name."""
    ids = _ids(replies)
    if not ids:
        return list(replies)
    names = await records.display_names(db, user_ids=ids)
    out: list[Reply] = []
    for reply in replies:
        if isinstance(reply, ApprovalRequest):
            reply = replace(reply, sender=_named(reply.sender, names))
        elif isinstance(reply, Text):
            reply = replace(reply, text=_named(reply.text, names))
        elif isinstance(reply, Ask | Choice):
            reply = replace(reply, prompt=_named(reply.prompt, names))
        out.append(reply)
    return out
