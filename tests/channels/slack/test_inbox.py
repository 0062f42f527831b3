"""The inbox journal: messages acknowledged and not yet acted on survive the process."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from channels.slack.inbox import Inbox

ROOT = Path(__file__).resolve().parents[3]


def body(n: int) -> dict[str, object]:
    return {"event_id": f"Ev{n}", "event": {"type": "message", "text": f"message {n} ✓"}}


def journals(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.log"))


def test_a_journal_lives_only_while_work_is_in_hand(tmp_path: Path) -> None:
    inbox = Inbox(tmp_path / "inbox")
    first, second = inbox.accept(body(1)), inbox.accept(body(2))
    [journal] = journals(tmp_path / "inbox")
    assert journal.stat().st_mode & 0o777 == 0o600
    inbox.done(first)
    assert [line[:3] for line in journal.read_text().splitlines()] == ["A 1", "A 2", "D 1"]
    inbox.done(second)
    inbox.done(second)  # twice: no harm
    assert journals(tmp_path / "inbox") == []  # what it held is gone with it
    third = inbox.accept(body(3))
    assert len(journals(tmp_path / "inbox")) == 1
    inbox.close()
    assert len(journals(tmp_path / "inbox")) == 1  # still in hand at shutdown: kept
    assert third is not None


def test_a_killed_process_s_unfinished_messages_are_taken_over_in_order(
        tmp_path: Path) -> None:
    folder = tmp_path / "inbox"
    script = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from channels.slack.inbox import Inbox\n"
        "inbox = Inbox(Path(sys.argv[1]))\n"
        "tickets = [inbox.accept({'event_id': f'Ev{n}'}) for n in range(1, 5)]\n"
        "inbox.done(tickets[1])\n"
        "os.write(inbox._current.fd, b'A 5 {\"event_id\": \"Ev5\", \"ev')\n"  # cut short
        "os.kill(os.getpid(), signal.SIGKILL)\n")
    result = subprocess.run([sys.executable, "-c", script, str(folder)], cwd=ROOT,
                            capture_output=True, timeout=60)
    assert result.returncode == -9, result.stderr
    assert len(journals(folder)) == 1

    inbox = Inbox(folder)
    taken = inbox.take_over()
    assert [item.body["event_id"] for item in taken] == ["Ev1", "Ev3", "Ev4"]
    assert journals(folder) == []
    assert inbox.take_over() == []


def test_a_live_process_s_journal_is_left_alone(tmp_path: Path) -> None:
    live = Inbox(tmp_path / "inbox")
    live.accept(body(1))
    starting = Inbox(tmp_path / "inbox")
    assert starting.take_over() == []
    assert len(journals(tmp_path / "inbox")) == 1
    live.close()  # the process ends with the work still in hand: now it can be taken over
    assert [item.body for item in starting.take_over()] == [body(1)]


def test_a_busy_spell_rolls_over_and_each_journal_goes_once_done(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Inbox, "ROLL_AT", 3)
    inbox = Inbox(tmp_path / "inbox")
    tickets = [inbox.accept(body(n)) for n in range(7)]
    assert len(journals(tmp_path / "inbox")) == 3
    for ticket in tickets[:3]:
        inbox.done(ticket)
    assert len(journals(tmp_path / "inbox")) == 2
    for ticket in tickets[3:]:
        inbox.done(ticket)
    assert journals(tmp_path / "inbox") == []


def test_an_unwritable_journal_is_logged_and_the_message_still_handled(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocked = tmp_path / "inbox"
    blocked.write_text("a file where the folder should be")
    inbox = Inbox(blocked)
    with caplog.at_level(logging.ERROR):
        ticket = inbox.accept(body(1))
    assert ticket is None
    assert "could not write the Slack inbox journal" in caplog.text
    inbox.done(ticket)
    assert inbox.take_over() == []
