"""``safehaven incidents``, run as a real process: a mistake reported at the terminal
(``safehaven mistake REF``) is listed with when it was found, the ICO decision deadline 72 hours
later, the time left, and its status; ``--open`` lists the open ones."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

from tests.test_cli import SHARE, cli_env, files, run

__all__ = ["cli_env", "files"]  # the fixtures, shared with the CLI's other tests


def test_a_mistake_reported_in_the_terminal_is_listed_with_its_ico_deadline(
        cli_env: dict[str, str], files: list[Path]) -> None:
    empty = run(cli_env, "incidents")
    assert empty.returncode == 0, empty.stdout + empty.stderr
    assert "No incidents." in empty.stdout

    shared = run(cli_env, "share", *map(str, files), "--classification", "CONTROLLED", *SHARE,
                 "--password-via", "sms", "--sender", "console:alice")
    assert shared.returncode == 0, shared.stdout + shared.stderr
    found = re.search(r"reference: (SH-\S+)", shared.stdout)
    assert found, shared.stdout
    ref = found.group(1)

    stranger = run(cli_env, "mistake", ref, "--sender", "console:mallory")
    assert stranger.returncode == 1 and "cannot find a transfer" in stranger.stdout
    assert "No incidents." in run(cli_env, "incidents").stdout

    reported = run(cli_env, "mistake", ref, "--sender", "console:alice")
    assert reported.returncode == 0, reported.stdout + reported.stderr
    assert f"Mistake on transfer {ref} reported" in reported.stdout
    assert "the encrypted archive was handed back to you" in reported.stdout
    again = run(cli_env, "mistake", ref, "--sender", "console:alice")
    assert f"A mistake on transfer {ref} was already reported" in again.stdout

    listed = run(cli_env, "incidents")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    (line,) = [row for row in listed.stdout.splitlines() if row.startswith(ref)]
    stamps = re.findall(r"\d{4}-\d\d-\d\d \d\d:\d\d", line)
    assert len(stamps) == 2, line
    opened, due = (datetime.strptime(s, "%Y-%m-%d %H:%M") for s in stamps)
    # Wall-clock times in the policy's zone: 72 hours apart, or 71/73 across a clock change.
    assert timedelta(hours=71) <= due - opened <= timedelta(hours=73), line
    assert re.search(r"\b7[12] h \d\d min\b", line), line
    assert line.rstrip().endswith("open")
    only_open = run(cli_env, "incidents", "--open")
    assert ref in only_open.stdout
