"""Direct messages acknowledged but not yet acted on, kept on disk until they are.

Slack hears 200 as soon as a message arrives and never sends it again; the work (download,
turn, reply) follows in the background. A process killed in between (``SIGKILL``, the OOM
killer, a container stopped hard) would otherwise lose the message without a word to its
sender. So each message the bot will act on is appended to a journal under ``var/`` before
it is acknowledged, and marked done when its work has ended; a ``serve`` starting up takes
over the journals of processes that are gone and acts on what they left undone (see
:meth:`channels.slack.listeners.messages.Messages.resume`).

Each process writes its own journal, ``var/slack-inbox/<pid>-<random>.log``, and holds an
exclusive ``flock`` on it while alive. The kernel drops the lock when the process ends,
however it ends, so a journal that can be locked belongs to nobody: replicas sharing a
``var/`` never take over each other's live work. Lines are appended with one ``os.write``
to an ``O_APPEND`` descriptor, without ``fsync``: what was written survives the process
being killed (it is in the kernel's page cache) though not the machine losing power, and
costs microseconds on the acknowledgement path.

The journal holds what the person sent (their typed text, the names and Slack URLs of their
files; never file contents, and never a password, which only the bot generates), so it is
kept only while there is work in hand: a journal whose every entry is done is deleted, and
a new one started on the next message. While messages keep arriving faster than they are
done, a journal takes :attr:`Inbox.ROLL_AT` of them and the next go to a new one; each is
deleted once all of its messages are done.

Line format: ``A <n> <json>`` when a message is accepted, ``D <n>`` when it is done, ``n``
counting the journal's messages from 1.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.private import private_dir

log = logging.getLogger(__name__)


@dataclass(eq=False)
class _Journal:
    path: Path
    fd: int
    pending: set[int] = field(default_factory=set)
    count: int = 0


@dataclass(frozen=True, eq=False)
class Ticket:
    """A message accepted into the inbox; hand it back to :meth:`Inbox.done`."""

    journal: _Journal
    number: int


@dataclass(frozen=True)
class Unfinished:
    """A message a process that is gone accepted and did not finish."""

    body: dict[str, Any]


class Inbox:
    """This process's journal of messages in hand (see the module's docstring)."""

    ROLL_AT = 5000  # messages a journal takes before the next goes to a new one

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._current: _Journal | None = None
        self._journals: set[_Journal] = set()  # open ones: the current and any rolled over

    def accept(self, body: Mapping[str, Any]) -> Ticket | None:
        """Record ``body`` (a Slack event) before the acknowledgement. None if the journal
        cannot be written (the disk full, ``var/`` read-only): the message is still acted
        on, only not safe from a crash, and the error is logged."""
        line = json.dumps(body, separators=(",", ":"), ensure_ascii=True)
        if self._current is not None and self._current.count >= self.ROLL_AT:
            self._current = None  # a busy spell: start afresh; the old one goes once done
        try:
            journal = self._current or self._open()
            number = journal.count + 1
            os.write(journal.fd, f"A {number} {line}\n".encode("ascii"))
        except OSError as exc:
            log.error("could not write the Slack inbox journal (%s): messages in hand "
                      "would be lost if the process were killed", type(exc).__name__)
            return None
        journal.count = number
        journal.pending.add(number)
        return Ticket(journal, number)

    def done(self, ticket: Ticket | None) -> None:
        """The message's work has ended (acted on, or the person told why not)."""
        if ticket is None or ticket.number not in ticket.journal.pending:
            return
        journal = ticket.journal
        journal.pending.discard(ticket.number)
        if not journal.pending:  # nothing left in hand: the journal and what it held go
            self._close(journal, delete=True)
            return
        try:
            os.write(journal.fd, f"D {ticket.number}\n".encode("ascii"))
        except OSError as exc:  # replayed after a crash: the person is told, not harmed
            log.error("could not write the Slack inbox journal (%s)", type(exc).__name__)

    def take_over(self) -> list[Unfinished]:
        """The unfinished messages of every journal in the folder whose process is gone,
        in the order they arrived; their journals are deleted once read (the caller accepts
        each again, into this process's journal, before acting on it)."""
        if not self.folder.is_dir():
            return []
        found: list[Unfinished] = []
        for path in sorted(self.folder.glob("*.log"), key=_age):
            if any(path == journal.path for journal in self._journals):
                continue
            with _locked(path) as fd:
                if fd is None:
                    continue  # a live process's journal
                found += _unfinished(path)
                path.unlink(missing_ok=True)
        return found

    def close(self) -> None:
        """Shutdown: release the journal, kept if it still holds work (a later start takes
        it over), deleted if not."""
        for journal in list(self._journals):
            self._close(journal, delete=not journal.pending)

    def _open(self) -> _Journal:
        private_dir(self.folder)
        path = self.folder / f"{os.getpid()}-{secrets.token_hex(4)}.log"
        # Created under another name and locked before it is given its own, so no starting
        # process can take it over in between.
        making = path.with_suffix(".new")
        fd = os.open(making, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            making.rename(path)
        except OSError:
            os.close(fd)
            making.unlink(missing_ok=True)
            raise
        self._current = _Journal(path, fd)
        self._journals.add(self._current)
        return self._current

    def _close(self, journal: _Journal, *, delete: bool) -> None:
        if delete:
            journal.path.unlink(missing_ok=True)  # before the lock goes: never taken over
        with contextlib.suppress(OSError):
            os.close(journal.fd)
        self._journals.discard(journal)
        if journal is self._current:
            self._current = None


def _age(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[int | None]:
    """The journal's descriptor with its lock held, or None if a live process holds it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        yield None
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            yield None
            return
        yield fd
    finally:
        os.close(fd)


def _unfinished(path: Path) -> list[Unfinished]:
    accepted: dict[str, dict[str, Any]] = {}
    try:
        lines = path.read_bytes().decode("ascii", errors="replace").splitlines()
    except OSError as exc:
        log.error("could not read the Slack inbox journal %s: %s", path.name,
                  type(exc).__name__)
        return []
    for line in lines:
        kind, _, rest = line.partition(" ")
        key, _, data = rest.partition(" ")
        if kind == "A" and data:
            try:
                body = json.loads(data)
            except ValueError:  # the last line, cut short by the kill
                continue
            if isinstance(body, dict):
                accepted[key] = body
        elif kind == "D":
            accepted.pop(key, None)
    return [Unfinished(body) for body in accepted.values()]
