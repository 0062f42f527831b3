"""The `safehaven` command line, run as a real process against a real store."""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.vault import generate_key
from tests.support.core import PDF, SHARE_RECORD_FLAGS

SEVEN_ZIP = shutil.which("7z")


def run(env: dict[str, str], *args: str, stdin: str | None = None
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot.app.cli", *args], env=env, text=True,
                          capture_output=True, input=stdin, timeout=120,
                          cwd=Path(__file__).resolve().parents[1], check=False)


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAFEHAVEN_")}
    env.update(SAFEHAVEN_VAR_DIR=str(tmp_path / "var"), SAFEHAVEN_SECRET_KEY=generate_key(),
               SAFEHAVEN_LOG_LEVEL="DEBUG")
    return env


@pytest.fixture
def files(tmp_path: Path) -> list[Path]:
    a = tmp_path / "Julia Smith 01-02-2003.pdf"
    a.write_bytes(PDF)
    b = tmp_path / "chronology.txt"
    b.write_text("Chronology of contact\n" * 200)
    return [a, b]


SHARE = [*SHARE_RECORD_FLAGS, "--recipient-name", "Priya Shah",
         "--recipient-title", "Safeguarding Lead",
         "--recipient-org", "Northfield NHS Trust", "--recipient-email", "priya.shah@nhs.net",
         "--recipient-phone", "07911 123456", "--purpose",
         "Strategy meeting about a child at risk", "--consent", "Only for the strategy meeting"]


def password_from_outbox(var: Path, reference: str) -> str:
    match = re.search(rf"password for {reference} is (\S+) \.", (var / "outbox.log").read_text())
    assert match
    return match.group(1)


def test_share_end_to_end_opens_in_7zip_and_leaves_no_plaintext(
        cli_env: dict[str, str], files: list[Path], tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    result = run(cli_env, "share", *map(str, files), "--classification", "CONTROLLED", *SHARE,
                 "--password-via", "sms", "--out", str(out_dir), "--sender", "console:alice")
    assert result.returncode == 0, result.stdout + result.stderr
    reference = re.search(r"reference: (SH-\S+)", result.stdout)
    assert reference, result.stdout
    ref = reference.group(1)
    archive = out_dir / f"{ref}.zip"
    assert f"archive: {archive}" in result.stdout
    var = Path(cli_env["SAFEHAVEN_VAR_DIR"])
    password = password_from_outbox(var, ref)

    # The password is nowhere but the development outbox: not in what the sender saw, the
    # logs, the notifications or the database files.
    assert password not in result.stdout.replace(
        (var / "outbox.log").read_text(), "") and password not in result.stderr
    for path in var.rglob("*"):
        if path.is_file() and path.name != "outbox.log":
            assert password.encode() not in path.read_bytes(), path
    assert not list((var / "uploads").rglob("*.bin"))

    if SEVEN_ZIP:
        listing = subprocess.run([SEVEN_ZIP, "l", "-slt", f"-p{password}", str(archive)],
                                 capture_output=True, text=True, check=True).stdout
        assert "Julia" not in listing and "document-1.pdf" in listing
        assert "AES-256" in listing
        extract = tmp_path / "x"
        ok = subprocess.run([SEVEN_ZIP, "x", f"-p{password}", f"-o{extract}", str(archive)],
                            capture_output=True, text=True, check=False)
        assert ok.returncode == 0, ok.stdout
        assert (extract / "document-1.pdf").read_bytes() == PDF
        wrong = subprocess.run([SEVEN_ZIP, "t", "-pWrong-Password-22", str(archive)],
                               capture_output=True, text=True, check=False)
        assert wrong.returncode != 0

    status = run(cli_env, "status", ref)
    assert "archive handed back" in status.stdout
    verify = run(cli_env, "audit", "verify")
    assert verify.returncode == 0 and "intact" in verify.stdout
    export = run(cli_env, "audit", "export", "--since", "2000-01-01", "--format", "csv")
    assert ref in export.stdout and "Priya Shah" in export.stdout
    assert password not in export.stdout


def test_share_refuses_bad_answers_with_the_chat_message(cli_env: dict[str, str],
                                                         files: list[Path]) -> None:
    args = [a if a != "priya.shah@nhs.net" else "priya@gmail.com" for a in SHARE]
    result = run(cli_env, "share", str(files[0]), "--classification", "CONTROLLED", *args,
                 "--password-via", "sms")
    assert result.returncode == 1
    assert "error:" in result.stdout and "gmail.com" in result.stdout
    var = Path(cli_env["SAFEHAVEN_VAR_DIR"])
    assert not list((var / "uploads").rglob("*.bin"))
    bad_class = run(cli_env, "share", str(files[0]), "--classification", "SECRET", *SHARE,
                    "--password-via", "sms")
    assert bad_class.returncode == 2, bad_class.stdout + bad_class.stderr
    assert "--classification 'SECRET' is not one of 'PUBLIC', 'CONTROLLED', 'RESTRICTED'" \
        in bad_class.stderr


def without(flags: list[str], *names: str) -> list[str]:
    """``flags`` without the options ``names`` and the value after each (if it has one)."""
    out: list[str] = []
    skip = False
    for i, flag in enumerate(flags):
        if skip:
            skip = False
            continue
        if flag in names:
            skip = i + 1 < len(flags) and not flags[i + 1].startswith("--")
            continue
        out.append(flag)
    return out


@pytest.mark.parametrize(("left_out", "said"), [
    ("--lawful-basis", "--lawful-basis is required: one of 'UK GDPR Art 6(1)(e) public task', "
                       "'UK GDPR Art 6(1)(c) legal obligation',"),
    ("--category", "--category is required: one of 'health', 'safeguarding', "
                   "'criminal-offence',"),
    ("--onward-sharing", "--onward-sharing is required: yes or no"),
    ("--delete-after-use", "--delete-after-use is required: confirm the recipient will be told"),
    ("--password-via", "--password-via is required: one of 'sms', 'sms-on-receipt', 'voice'"),
])
def test_share_never_records_an_answer_nobody_gave(cli_env: dict[str, str], files: list[Path],
                                                   left_out: str, said: str) -> None:
    """Every answer on the record is given by the person sharing: a missing one is a usage
    error (exit code 2) naming the option and its choices, before any file is read, and no
    transfer is started."""
    args = without([*SHARE, "--password-via", "sms"], left_out)
    result = run(cli_env, "share", str(files[0]), "--classification", "CONTROLLED", *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert said in result.stderr
    assert "reference:" not in result.stdout
    var = Path(cli_env["SAFEHAVEN_VAR_DIR"])
    assert not list((var / "uploads").rglob("*.bin"))
    assert "SH-" not in run(cli_env, "audit", "export", "--format", "csv").stdout


def test_share_flags_the_policy_does_not_offer_are_named(cli_env: dict[str, str],
                                                         files: list[Path]) -> None:
    no_class = run(cli_env, "share", str(files[0]), *SHARE, "--password-via", "sms")
    assert no_class.returncode == 2
    assert "--classification is required: one of 'PUBLIC', 'CONTROLLED', 'RESTRICTED'" \
        in no_class.stderr
    voice = run(cli_env, "share", str(files[0]), "--classification", "CONTROLLED", *SHARE,
                "--password-via", "voice")
    assert voice.returncode == 2 and "--call-at is required with --password-via voice" \
        in voice.stderr
    sms = run(cli_env, "share", str(files[0]), "--classification", "RESTRICTED", *SHARE,
              "--password-via", "sms")
    assert sms.returncode == 2
    assert "--password-via 'sms' is not one of 'voice', 'sms-on-receipt'" in sms.stderr
    category = run(cli_env, "share", str(files[0]), "--classification", "CONTROLLED", *SHARE,
                   "--password-via", "sms", "--category", "astrology")
    assert category.returncode == 2
    assert "--category 'astrology' is not one of 'health', 'safeguarding'" in category.stderr
    basis = run(cli_env, "share", str(files[0]), "--classification", "CONTROLLED",
                *without(SHARE, "--lawful-basis"), "--lawful-basis", "because",
                "--password-via", "sms")
    assert basis.returncode == 2
    assert "--lawful-basis 'because' is not one of 'UK GDPR Art 6(1)(e) public task'" \
        in basis.stderr
    helped = run(cli_env, "share", "--help")
    assert "policy's default_delivery" in " ".join(helped.stdout.split())


def test_share_records_the_categories_and_department_given(cli_env: dict[str, str],
                                                           files: list[Path]) -> None:
    """`--category health --category safeguarding`: special category data at CONTROLLED
    waits for a manager even to an NHS address; the record and the CSV export carry the
    categories and the recipient's department."""
    args = without(SHARE, "--category")
    result = run(cli_env, "share", str(files[0]), "--classification", "CONTROLLED", *args,
                 "--category", "health", "--category", "safeguarding", "--password-via", "sms",
                 "--recipient-department", "Children's Safeguarding Team",
                 "--sender", "console:alice")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "needs authorising" in result.stdout
    assert "special category or criminal offence data" in result.stdout
    ref = re.search(r"reference: (SH-\S+)", result.stdout)
    assert ref
    export = run(cli_env, "audit", "export", "--format", "csv")
    rows = [row for row in csv.DictReader(io.StringIO(export.stdout))
            if row["reference"] == ref.group(1) and row["action"] == "confirmed"]
    assert len(rows) == 1, export.stdout
    assert rows[0]["information_categories"] == "health; safeguarding"
    assert rows[0]["recipient_department"] == "Children's Safeguarding Team"


def test_share_waits_for_approval_then_approve(cli_env: dict[str, str],
                                               files: list[Path]) -> None:
    result = run(cli_env, "share", str(files[1]), "--classification", "RESTRICTED", *SHARE,
                 "--password-via", "sms-on-receipt", "--sender", "console:alice")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "needs authorising" in result.stdout
    ref = re.search(r"reference: (SH-\S+)", result.stdout)
    assert ref
    self_approve = run(cli_env, "approve", ref.group(1), "--approver", "console:alice")
    assert self_approve.returncode == 1 and "own transfer" in self_approve.stdout
    approved = run(cli_env, "approve", ref.group(1), "--approver", "console:manager")
    assert approved.returncode == 0, approved.stdout + approved.stderr
    # The sender's archive is for the sender's terminal, not the approver's.
    assert f"{ref.group(1)}.zip" not in approved.stdout
    received = run(cli_env, "received", ref.group(1), "--sender", "console:alice")
    assert f"console:manager approved transfer {ref.group(1)}" in received.stdout
    assert f"{ref.group(1)}.zip" in received.stdout
    assert "texted" in received.stdout


def test_invalid_policy_stops_with_the_key_named(cli_env: dict[str, str], tmp_path: Path
                                                 ) -> None:
    policy = tmp_path / "policy.toml"
    text = (Path(__file__).resolve().parents[1] / "bot/policies/default.toml").read_text()
    policy.write_text(text.replace('download_limit = 3', 'download_limit = "three"'))
    result = run(dict(cli_env, SAFEHAVEN_POLICY=str(policy)), "status", "SH-AAAA-22")
    assert result.returncode == 2
    assert "classification[1].download_limit" in result.stderr


def test_production_refuses_missing_key_and_console_transport(cli_env: dict[str, str]) -> None:
    production = dict(cli_env, SAFEHAVEN_ENV="production",
                      SAFEHAVEN_PUBLIC_URL="https://safehaven.example.gov.uk")
    env = dict(production)
    env.pop("SAFEHAVEN_SECRET_KEY")
    result = run(env, "status", "SH-AAAA-22")
    assert result.returncode == 2 and "SAFEHAVEN_SECRET_KEY" in result.stderr
    result = run(production, "status", "SH-AAAA-22")
    assert result.returncode == 2 and "development only" in result.stderr


def test_terminal_chat(cli_env: dict[str, str], files: list[Path]) -> None:
    answers = "\n".join([
        "CONTROLLED",
        "8, 9",  # contact details only, other personal data
        "Priya Shah", "Safeguarding Lead", "", "Northfield NHS Trust", "priya.shah@nhs.net",
        "07911 123456",
        "Strategy meeting about a child at risk",
        "1",
        "Only for the strategy meeting", "no", "yes",
        "1",
        "1",
        "confirm",
    ]) + "\n"
    result = run(cli_env, "chat", str(files[1]), "--sender", "console:alice", stdin=answers)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Please check transfer" in result.stdout
    assert "What kind of information is this?" in result.stdout
    assert "Information: Contact details only, Other personal data" in result.stdout
    assert "Subject: CONFIDENTIAL SH-" in result.stdout
    assert "SMS to +447911123456" in result.stdout


def test_share_refusals_name_the_option(cli_env: dict[str, str], files: list[Path]) -> None:
    """What the conversation refuses is said with the option that gave it."""
    voice = run(cli_env, "share", str(files[1]), "--classification", "CONTROLLED", *SHARE,
                "--password-via", "voice", "--call-at", "tomorrow")
    assert voice.returncode == 1
    assert "error: --call-at: I could not read 'tomorrow' as a date and time" in voice.stdout
    args = [{"priya.shah@nhs.net": "priya@gmail.com", "07911 123456": "12"}.get(a, a)
            for a in SHARE]
    form = run(cli_env, "share", str(files[1]), "--classification", "CONTROLLED", *args,
               "--password-via", "sms")
    assert form.returncode == 1
    assert "error: --recipient-email: gmail.com is a personal email service" in form.stdout
    assert "error: --recipient-phone: That isn't a valid phone number" in form.stdout


def test_transfer_commands_name_what_they_take(cli_env: dict[str, str]) -> None:
    for command in ("approve", "status", "cancel", "received"):
        extra = ["--approver", "console:manager"] if command == "approve" else []
        result = run(cli_env, command, "nonsense", *extra)
        assert result.returncode == 2, (command, result.stdout + result.stderr)
        assert "argument reference: 'nonsense' is not a transfer reference: one like " \
            "SH-7K3Q-9F" in result.stderr, result.stderr
    rejected = run(cli_env, "approve", "SH-AAAA-22", "--approver", "console:manager",
                   "--reject")
    assert rejected.returncode == 2
    assert "--reject needs --reason" in rejected.stderr
    missing = run(cli_env, "chat", "no-such-file.pdf", "--sender", "console:alice")
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert "argument files: 'no-such-file.pdf' is not a file that can be read" in missing.stderr


def test_share_warns_of_a_name_as_the_chat_does(cli_env: dict[str, str],
                                                tmp_path: Path) -> None:
    named = tmp_path / "JoanMcMillan.txt"
    named.write_text("Chronology of contact\n" * 50)
    warning = ("⚠ The name \"JoanMcMillan.txt\" looks like it identifies a person (“JoanMcMillan” "
               "looks like a person's name). Inside the archive it will be called "
               "document-1.txt")
    shared = run(cli_env, "share", str(named), "--classification", "CONTROLLED", *SHARE,
                 "--password-via", "sms")
    assert shared.returncode == 0, shared.stdout + shared.stderr
    assert warning in shared.stderr
    chat = run(cli_env, "chat", str(named), "--sender", "console:bob", stdin="quit\n")
    assert warning in chat.stdout
