"""``safehaven incidents``, run as a real process: a mistake reported at the terminal
(``safehaven mistake REF``) is listed with when it was found, the ICO decision deadline 72 hours
later, the time left, and its status; ``--open`` lists the open ones. ``safehaven incidents
decide`` records information governance's decision (on time, or late, as the record says),
once, and closes the incident."""

from __future__ import annotations

import json
import re
import sqlite3
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


def shared_and_reported(cli_env: dict[str, str], files: list[Path]) -> str:
    """A transfer shared and a mistake reported on it at the terminal; its reference."""
    shared = run(cli_env, "share", *map(str, files), "--classification", "CONTROLLED", *SHARE,
                 "--password-via", "sms", "--sender", "console:alice")
    assert shared.returncode == 0, shared.stdout + shared.stderr
    found = re.search(r"reference: (SH-\S+)", shared.stdout)
    assert found, shared.stdout
    reported = run(cli_env, "mistake", found.group(1), "--sender", "console:alice")
    assert reported.returncode == 0, reported.stdout + reported.stderr
    return found.group(1)


def database(cli_env: dict[str, str]) -> sqlite3.Connection:
    return sqlite3.connect(Path(cli_env["SAFEHAVEN_VAR_DIR"]) / "safehaven.db")


def decided_records(cli_env: dict[str, str], ref: str) -> list[tuple[str, dict[str, object]]]:
    with database(cli_env) as db:
        rows = db.execute("SELECT actor, details FROM audit_records WHERE action = "
                          "'incident_decided' AND reference = ?", (ref,)).fetchall()
    return [(actor, json.loads(details)) for actor, details in rows]


def found_earlier(cli_env: dict[str, str], ref: str, hours: int) -> None:
    """As if the mistake had been reported ``hours`` earlier (the process has no clock to
    set): its found time and deadline moved back together."""
    with database(cli_env) as db:
        opened, due = db.execute("SELECT opened_at, ico_decision_due FROM incidents WHERE "
                                 "reference = ?", (ref,)).fetchone()
        back = [(datetime.fromisoformat(t) - timedelta(hours=hours))
                .strftime("%Y-%m-%d %H:%M:%S.%f") for t in (opened, due)]
        db.execute("UPDATE incidents SET opened_at = ?, ico_decision_due = ? WHERE "
                   "reference = ?", (*back, ref))


def test_the_ico_decision_is_recorded_once_and_closes_the_incident(
        cli_env: dict[str, str], files: list[Path]) -> None:
    ref = shared_and_reported(cli_env, files)

    # Flags missing or wrong: argparse names them and the valid values; nothing recorded.
    missing = run(cli_env, "incidents", "decide", ref, "--ico", "reported")
    assert missing.returncode == 2 and "--reason" in missing.stderr \
        and "--by" in missing.stderr, missing.stderr
    wrong = run(cli_env, "incidents", "decide", ref, "--ico", "yes", "--reason", "r",
                "--by", "Jo Bloggs")
    assert wrong.returncode == 2 and "'reported', 'not-reported'" in wrong.stderr
    blank = run(cli_env, "incidents", "decide", ref, "--ico", "reported", "--reason", "  ",
                "--by", "Jo Bloggs")
    assert blank.returncode == 1 and "`--reason TEXT` must not be empty" in blank.stdout
    case_without_report = run(cli_env, "incidents", "decide", ref, "--ico", "not-reported",
                              "--ico-reference", "IC-1", "--reason", "r", "--by", "Jo")
    assert case_without_report.returncode == 1
    assert "only with `--ico reported`" in case_without_report.stdout
    unknown = run(cli_env, "incidents", "decide", "SH-2222-22", "--ico", "reported",
                  "--reason", "r", "--by", "Jo Bloggs")
    assert unknown.returncode == 1 and "No mistake was reported on transfer SH-2222-22" \
        in unknown.stdout
    assert decided_records(cli_env, ref) == []
    assert ref in run(cli_env, "incidents", "--open").stdout

    decided = run(cli_env, "incidents", "decide", ref.lower(), "--ico", "reported",
                  "--ico-reference", "IC-123456-A1B2", "--reason",
                  "Health data of a child reached another trust", "--by", "Jo Bloggs (IG)")
    assert decided.returncode == 0, decided.stdout + decided.stderr
    assert f"Incident on transfer {ref} closed: reported to the ICO (ICO reference " \
        "IC-123456-A1B2), decided by Jo Bloggs (IG)" in decided.stdout
    assert "late" not in decided.stdout

    (actor, details), = decided_records(cli_env, ref)
    assert actor == "Jo Bloggs (IG)"
    assert details["ico"] == "reported" and details["ico_reference"] == "IC-123456-A1B2"
    assert details["reason"] == "Health data of a child reached another trust"
    assert details["late"] is False

    listed = run(cli_env, "incidents").stdout
    (line,) = [row for row in listed.splitlines() if row.startswith(ref)]
    assert line.rstrip().endswith("closed") and " - " in line, line
    assert "by Jo Bloggs (IG): reported to the ICO (ICO reference IC-123456-A1B2). " \
        "Reason: Health data of a child reached another trust" in listed
    assert "OVERDUE" not in listed
    assert run(cli_env, "incidents", "--open").stdout.strip() == "No open incidents."

    again = run(cli_env, "incidents", "decide", ref, "--ico", "not-reported", "--reason",
                "changed my mind", "--by", "Someone Else")
    assert again.returncode == 1
    assert f"The incident on transfer {ref} was already decided by Jo Bloggs (IG)" \
        in again.stdout and "nothing was changed" in again.stdout
    assert len(decided_records(cli_env, ref)) == 1
    assert "changed my mind" not in run(cli_env, "incidents").stdout


def test_an_overdue_incident_stands_out_and_a_late_decision_is_recorded_late(
        cli_env: dict[str, str], files: list[Path]) -> None:
    ref = shared_and_reported(cli_env, files)
    found_earlier(cli_env, ref, hours=75)

    listed = run(cli_env, "incidents", "--open").stdout
    (line,) = [row for row in listed.splitlines() if row.startswith(ref)]
    assert "overdue 3 h" in line and line.rstrip().endswith("open, DECISION OVERDUE"), line
    assert "1 incident past the 72-hour deadline with no decision recorded" in listed

    decided = run(cli_env, "incidents", "decide", ref, "--ico", "not-reported", "--reason",
                  "Recipient confirmed deletion; unlikely to result in a risk",
                  "--by", "console:ig")
    assert decided.returncode == 0, decided.stdout + decided.stderr
    assert "closed: not reported to the ICO, decided by console:ig" in decided.stdout
    assert "recorded as late (3 h" in decided.stdout
    (_actor, details), = decided_records(cli_env, ref)
    assert details["late"] is True and details["ico"] == "not-reported"
    assert details["ico_reference"] is None

    listed = run(cli_env, "incidents").stdout
    assert "not reported to the ICO (late: 3 h" in listed
    assert "OVERDUE" not in listed and "past the 72-hour deadline" not in listed
