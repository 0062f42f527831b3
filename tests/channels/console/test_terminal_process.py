"""``safehaven chat`` as a real process: Ctrl-C while it waits for an answer, a terminal that
shows the conversation alone (the log in the log file), and files that would join a
transfer already open."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bot.settings import load_settings
from bot.vault import generate_key
from tests.support.core import PDF

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAFEHAVEN_")}
    env.update(SAFEHAVEN_VAR_DIR=str(tmp_path / "var"), SAFEHAVEN_SECRET_KEY=generate_key(),
               SAFEHAVEN_LOG_LEVEL="DEBUG")
    return env


@pytest.fixture
def pdf(tmp_path: Path) -> Path:
    path = tmp_path / "referral.pdf"
    path.write_bytes(PDF)
    return path


@pytest.fixture
def docx(tmp_path: Path) -> Path:
    path = tmp_path / "other.txt"
    path.write_text("Chronology of contact\n" * 50)
    return path


def chat(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot.app.cli", "chat", *args,
                           "--sender", "console:alice"], env=env, text=True,
                          capture_output=True, input=stdin, timeout=120, cwd=ROOT,
                          check=False)


def test_ctrl_c_while_waiting_for_an_answer_stops_at_once_keeping_the_answers(
        cli_env: dict[str, str], pdf: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "bot.app.cli", "chat", str(pdf),
                             "--sender", "console:alice"], env=cli_env, cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    shown = bytearray()

    def collect() -> None:
        assert proc.stdout is not None
        while chunk := os.read(proc.stdout.fileno(), 4096):
            shown.extend(chunk)

    reader = threading.Thread(target=collect, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 60
        # Waiting on the classification question: its prompt is the last thing shown.
        while not (b"SH-" in shown and shown.endswith(b"> ")):
            assert proc.poll() is None, shown.decode()
            assert time.monotonic() < deadline, shown.decode()
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=15)  # stdin stays open: no Enter is ever typed
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(timeout=5)
    assert proc.stderr is not None
    text = shown.decode()
    assert code == 130, text + proc.stderr.read().decode()
    assert "Stopped. Your answers so far are kept; run `safehaven chat`" in text
    asked = "How is this information classified?"
    assert asked in text
    # The transfer is where it was left: the next chat asks the same question again.
    again = chat(cli_env, stdin="quit\n")
    assert asked in again.stdout, again.stdout + again.stderr


def test_the_terminal_shows_the_conversation_and_the_log_goes_to_its_file(
        cli_env: dict[str, str], pdf: Path) -> None:
    quiet = chat(cli_env, str(pdf), stdin="quit\n")
    assert quiet.returncode == 0, quiet.stdout + quiet.stderr
    assert "SH-" in quiet.stdout
    shown = quiet.stdout + quiet.stderr
    assert "INFO" not in shown and "DEBUG" not in shown and "alembic" not in shown, shown
    log = load_settings(cli_env).log_path.read_text()
    assert "alembic" in log and "INFO" in log

    verbose = chat(cli_env, "--verbose", stdin="quit\n")
    assert verbose.returncode == 0, verbose.stdout + verbose.stderr
    assert "INFO" in verbose.stderr and "alembic" in verbose.stderr, verbose.stderr


def test_files_that_would_join_an_open_transfer_ask_first(
        cli_env: dict[str, str], pdf: Path, docx: Path) -> None:
    first = chat(cli_env, str(pdf), stdin="quit\n")
    ref = re.search(r"Transfer (SH-[A-Z0-9-]+)", first.stdout)
    assert ref, first.stdout + first.stderr
    question = (f"You have transfer {ref.group(1)} open with 1 file. Add other.txt to it, "
                "or start a new transfer?")

    # Neither: nothing is sent, the open transfer keeps its one file.
    left = chat(cli_env, str(docx), stdin="3\n")
    assert question in left.stdout, left.stdout + left.stderr
    assert f"Nothing was sent; {ref.group(1)} is as you left it." in left.stdout
    assert "Added to transfer" not in left.stdout

    # Add: the file joins it, as asked.
    added = chat(cli_env, str(docx), stdin="maybe\n1\nquit\n")
    assert question in added.stdout, added.stdout + added.stderr
    assert "Please type 1, 2 or 3." in added.stdout
    assert f"Added to transfer {ref.group(1)}; it now has 2 file" in added.stdout

    # New: the open one is cancelled and the file starts another.
    other = docx.with_name("later.txt")
    other.write_text("Later notes\n" * 50)
    new = chat(cli_env, str(other), stdin="2\nquit\n")
    assert (f"You have transfer {ref.group(1)} open with 2 files. Add later.txt to it"
            in new.stdout), new.stdout + new.stderr
    assert f"Transfer {ref.group(1)} is cancelled" in new.stdout, new.stdout
    started = re.findall(r"Transfer (SH-[A-Z0-9-]+): I have 1 file", new.stdout)
    assert started and started[0] != ref.group(1), new.stdout
    status = subprocess.run([sys.executable, "-m", "bot.app.cli", "status", ref.group(1)],
                            env=cli_env, text=True, capture_output=True, timeout=120,
                            cwd=ROOT, check=False)
    assert "cancelled" in status.stdout.lower(), status.stdout + status.stderr
