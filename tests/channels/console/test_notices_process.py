"""Each person at a terminal sees their own messages, and only those, through the real
``safehaven`` processes: the sender's chat waits for the approver's decision and shows it
as it comes; the approver sees the request (never the sender's link or email text); a
chat without files shows what is open and takes the same commands as Slack and Teams."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bot.vault import generate_key
from tests.support.core import SHARE_RECORD_FLAGS

ROOT = Path(__file__).resolve().parents[3]
WAIT = 90  # seconds a step may take on a loaded machine before the test fails

# The RESTRICTED chat up to "Confirm and send": the policy asks console:manager.
ANSWERS = [
    "RESTRICTED", "8, 9",
    "Priya Shah", "Safeguarding Lead", "", "Northfield NHS Trust", "priya.shah@nhs.net",
    "07911 123456",
    "Strategy meeting about a child at risk",
    "1",
    "Only for the strategy meeting", "no", "yes",
    "1",  # secure download link
    "SMS once receipt is confirmed",
    "confirm",
]


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAFEHAVEN_")}
    env.update(SAFEHAVEN_VAR_DIR=str(tmp_path / "var"), SAFEHAVEN_SECRET_KEY=generate_key())
    return env


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    path = tmp_path / "chronology.txt"
    path.write_text("Chronology of contact\n" * 50)
    return path


def run(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot.app.cli", *args], env=env, text=True,
                          capture_output=True, input=stdin, timeout=180, cwd=ROOT,
                          check=False)


class Terminal:
    """A ``safehaven`` process whose input stays open: what it has shown so far, and
    lines typed into it."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "bot.app.cli", *args], env=env,
                                     cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        self.shown = bytearray()
        threading.Thread(target=self._collect, daemon=True).start()

    def _collect(self) -> None:
        assert self.proc.stdout is not None
        while chunk := os.read(self.proc.stdout.fileno(), 4096):
            self.shown.extend(chunk)

    @property
    def text(self) -> str:
        return self.shown.decode("utf-8", "replace")

    def type(self, *lines: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("".join(f"{line}\n" for line in lines).encode())
        self.proc.stdin.flush()

    def wait_for(self, text: str) -> None:
        deadline = time.monotonic() + WAIT
        while text not in self.text:
            assert self.proc.poll() is None or text in self.text, self.text
            assert time.monotonic() < deadline, f"{text!r} never shown:\n{self.text}"
            time.sleep(0.1)

    def close(self) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            return self.proc.wait(timeout=WAIT)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


def test_the_sender_waits_for_the_decision_and_each_sees_only_their_own(
        cli_env: dict[str, str], notes: Path) -> None:
    alice = Terminal(cli_env, "chat", str(notes), "--sender", "console:alice")
    try:
        alice.type(*ANSWERS)
        alice.wait_for("Waiting for console:manager to decide on SH-")
        ref = re.search(r"decide on (SH-[A-Z0-9]{4}-[A-Z0-9]{2})", alice.text)
        assert ref, alice.text
        reference = ref.group(1)
        assert "Ctrl-C leaves; `safehaven chat` later shows the outcome" in alice.text
        # The approver's request is not the sender's to see.
        assert "Do you authorise" not in alice.text

        # The approver opens the chat: their request, and nothing of the sender's.
        manager = run(cli_env, "chat", "--sender", "console:manager", stdin="quit\n")
        assert manager.returncode == 0, manager.stdout + manager.stderr
        assert f"console:alice asks you to authorise transfer {reference}" in manager.stdout
        assert f"Do you authorise {reference}?" in manager.stdout
        assert f"run `safehaven approve {reference}`" in manager.stdout
        assert f"• {reference} from console:alice: type `approve {reference}`" \
            in manager.stdout

        approved = run(cli_env, "approve", reference, "--approver", "console:manager")
        assert approved.returncode == 0, approved.stdout + approved.stderr
        assert f"you approved transfer {reference}" in approved.stdout
        # The sender's link and email text reach the sender, not the approver.
        for theirs in ("Secure download link", "Subject: CONFIDENTIAL", "/p/"):
            assert theirs not in approved.stdout, approved.stdout

        # ... in the chat still open, as soon as it is given.
        alice.wait_for(f"Secure download link for {reference}:")
        assert f"console:manager approved transfer {reference}" in alice.text
        assert f"Subject: CONFIDENTIAL {reference}" in alice.text
        alice.type("list")
        alice.wait_for("Your recent transfers:")
    finally:
        code = alice.close()
    assert code == 0, alice.text
    assert "Do you authorise" not in alice.text


def test_a_chat_without_files_shows_what_is_open_and_what_was_kept(
        cli_env: dict[str, str], notes: Path) -> None:
    shared = run(cli_env, "share", str(notes), "--classification", "RESTRICTED",
                 *SHARE_RECORD_FLAGS, "--recipient-name", "Priya Shah",
                 "--recipient-title", "Safeguarding Lead",
                 "--recipient-org", "Northfield NHS Trust",
                 "--recipient-email", "priya.shah@nhs.net", "--recipient-phone", "07911 123456",
                 "--purpose", "Strategy meeting about a child at risk",
                 "--consent", "Only for the strategy meeting",
                 "--password-via", "sms-on-receipt", "--sender", "console:alice")
    assert shared.returncode == 0, shared.stdout + shared.stderr
    ref = re.search(r"reference: (SH-\S+)", shared.stdout)
    assert ref, shared.stdout
    reference = ref.group(1)
    assert "run `safehaven chat` to see it" in shared.stdout
    assert "Do you authorise" not in shared.stdout

    # Before the decision: the open transfer, its recipient, status and what comes next.
    before = run(cli_env, "chat", "--sender", "console:alice", stdin="quit\n")
    assert before.returncode == 0, before.stdout + before.stderr
    assert "Your open transfers:" in before.stdout
    assert (f"• {reference} to Priya Shah: waiting for approval. Asked: console:manager"
            in before.stdout), before.stdout

    # The approver decides in their own chat, by typing it.
    decided = run(cli_env, "chat", "--sender", "console:manager",
                  stdin=f"approve {reference}\nquit\n")
    assert f"Recorded: you approved transfer {reference}" in decided.stdout, decided.stdout
    assert "Secure download link for" not in decided.stdout

    # The sender's next chat: what was kept for them, then the commands Slack has.
    after = run(cli_env, "chat", "--sender", "console:alice",
                stdin=f"status {reference}\nlist\narchive {reference}\nhelp\nquit\n")
    assert after.returncode == 0, after.stdout + after.stderr
    text = after.stdout
    assert "While I could not reach you, a message was kept for you:" in text
    assert f"console:manager approved transfer {reference}" in text
    assert f"Secure download link for {reference}:" in text
    assert f"• {reference} to Priya Shah: ready: the secure download link is with you." in text
    assert "Your recent transfers:" in text
    assert f"`status {reference}` shows" in text
    assert "`mistake REF`" in text  # help lists the commands
    assert "Do you authorise" not in text
    # Shown once: the next chat has nothing new.
    again = run(cli_env, "chat", "--sender", "console:alice", stdin="quit\n")
    assert "kept for you" not in again.stdout

    mistake = run(cli_env, "chat", "--sender", "console:alice",
                  stdin=f"mistake {reference}\nquit\n")
    assert "information governance" in mistake.stdout, mistake.stdout


def test_a_cancel_at_the_prompt_asks_then_the_prompt_carries_on(
        cli_env: dict[str, str], notes: Path) -> None:
    shared = run(cli_env, "share", str(notes), "--classification", "RESTRICTED",
                 *SHARE_RECORD_FLAGS, "--recipient-name", "Priya Shah",
                 "--recipient-title", "Safeguarding Lead",
                 "--recipient-org", "Northfield NHS Trust",
                 "--recipient-email", "priya.shah@nhs.net", "--recipient-phone", "07911 123456",
                 "--purpose", "Strategy meeting about a child at risk",
                 "--consent", "Only for the strategy meeting",
                 "--password-via", "sms-on-receipt", "--sender", "console:alice")
    ref = re.search(r"reference: (SH-\S+)", shared.stdout)
    assert ref, shared.stdout + shared.stderr
    chat = run(cli_env, "chat", "--sender", "console:alice",
               stdin=f"cancel {ref.group(1)}\nyes\nstatus\nquit\n")
    assert chat.returncode == 0, chat.stdout + chat.stderr
    text = chat.stdout
    assert f"Cancel {ref.group(1)}?" in text
    assert f"Transfer {ref.group(1)} is cancelled" in text
    # Back at the prompt: `status` shows nothing open any more, then `quit` leaves.
    assert text.index("You have no open transfers.") > text.index("is cancelled"), text
    assert text.rstrip().endswith("run `safehaven chat` to carry on.")
