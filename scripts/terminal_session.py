"""Record a real ``safehaven chat`` session into docs/terminal.md.

    .venv/bin/python scripts/terminal_session.py [docs/terminal.md]

Runs the real command in a pseudo-terminal (so what is typed is echoed as a person sees it)
against a fresh data folder in a temporary directory, with the development transports (no
SMS or call is made): a sender shares a RESTRICTED file and waits; the manager opens their
chat, sees the request and approves it; the sender's chat shows the decision as it comes;
the sender's next chat without files shows what is open.
"""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROMPT = re.compile(r"(> |: |\? |\] )$")
QUIET = 0.4  # seconds without output after a prompt before typing the answer
LIMIT = 120.0  # seconds any one step may take


class Session:
    """One ``safehaven`` command in a pseudo-terminal: its screen, and typing into it."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.command = "safehaven " + " ".join(args)
        pid, fd = pty.fork()
        if pid == 0:  # the child: the command itself, in the folder the file is in
            os.execve(sys.executable, [sys.executable, "-m", "bot.app.cli", *args], env)  # noqa: S606
        self.pid, self.fd = pid, fd
        self.screen = ""

    def _read(self, wait: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], wait)
        if not ready:
            return False
        try:
            chunk = os.read(self.fd, 65536)
        except OSError:  # the command ended
            chunk = b""
        if not chunk:
            raise EOFError(self.screen)
        self.screen += chunk.decode("utf-8", "replace").replace("\r\n", "\n")
        return True

    def until(self, text: str) -> None:
        """Read until ``text`` is on the screen and it waits at a prompt."""
        deadline = time.monotonic() + LIMIT
        while time.monotonic() < deadline:
            if not self._read(QUIET) and text in self.screen and PROMPT.search(self.screen):
                return
        raise TimeoutError(f"{text!r} not shown by {self.command}:\n{self.screen}")

    def type(self, line: str, *, then: str = "") -> None:
        os.write(self.fd, f"{line}\n".encode())
        self.until(then)

    def end(self) -> str:
        """Type ``quit`` and read to the end."""
        os.write(self.fd, b"quit\n")
        try:
            while True:
                self._read(LIMIT)
        except EOFError:
            pass
        os.waitpid(self.pid, 0)
        return self.screen


def record() -> list[tuple[str, str]]:
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SAFEHAVEN_")}
        key = subprocess.run([sys.executable, "-m", "bot.app.cli", "generate-key"], env=env,
                             cwd=ROOT, capture_output=True, text=True, check=True).stdout
        env.update(SAFEHAVEN_VAR_DIR=str(Path(tmp, "var")), SAFEHAVEN_SECRET_KEY=key.strip(),
                   TERM="dumb")
        notes = Path(tmp, "chronology.txt")
        notes.write_text("Chronology of contact\n" * 50)
        os.chdir(tmp)  # the file is named as the person would name it

        alice = Session(env, "chat", "chronology.txt", "--sender", "console:alice")
        alice.until("How is this information classified?")
        for answer in ("3", "8, 9", "Priya Shah", "Safeguarding Lead", "",
                       "Northfield NHS Trust", "priya.shah@nhs.net", "07911 123456",
                       "Strategy meeting about a child at risk", "1",
                       "Only for the strategy meeting", "no", "yes", "", "2"):
            alice.type(answer)
        alice.type("1", then="Waiting for console:manager")
        found = re.search(r"decide on (SH-[A-Z0-9]{4}-[A-Z0-9]{2})", alice.screen)
        assert found, alice.screen
        reference = found.group(1)

        manager = Session(env, "chat", "--sender", "console:manager")
        manager.until("Waiting for your decision")
        manager.type(f"approve {reference}", then="you approved")
        approving = manager.end()

        alice.until("Secure download link for")
        waiting = alice.end()

        later = Session(env, "chat", "--sender", "console:alice")
        later.until("Your open transfers")
        later.type(f"status {reference}", then=reference)
        return [(alice.command, waiting), (manager.command, approving),
                (later.command, later.end())]


def markdown(sessions: list[tuple[str, str]]) -> str:
    parts = ["# A terminal session",
             "",
             "A real `safehaven chat` session, recorded by `.venv/bin/python "
             "scripts/terminal_session.py` (the command in a pseudo-terminal against a fresh "
             "data folder and the development transports: no SMS or call is made). Three "
             "terminals: the sender shares a RESTRICTED file and waits; the manager opens "
             "their chat, sees the request and approves it by typing; the sender's chat shows "
             "the decision as it comes; later, `safehaven chat` without files shows what is "
             "open. Each person sees only their own messages.", ""]
    titles = ["The sender", "The manager, in another terminal", "The sender, later"]
    for title, (command, screen) in zip(titles, sessions, strict=True):
        parts += [f"## {title}", "", "```console", f"$ {command}", screen.rstrip(), "```", ""]
    return "\n".join(parts)


def main() -> None:
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs/terminal.md"
    target = target.resolve()
    target.write_text(markdown(record()), encoding="utf-8")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
