"""The `safehaven` command line, run as a real process against a real store."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.vault import generate_key
from tests.support.core import PDF

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


SHARE = ["--recipient-name", "Priya Shah", "--recipient-title", "Safeguarding Lead",
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
    result = run(cli_env, "share", str(files[0]), "--classification", "CONTROLLED", *args)
    assert result.returncode == 1
    assert "error:" in result.stdout and "gmail.com" in result.stdout
    var = Path(cli_env["SAFEHAVEN_VAR_DIR"])
    assert not list((var / "uploads").rglob("*.bin"))
    bad_class = run(cli_env, "share", str(files[0]), "--classification", "SECRET", *SHARE)
    assert bad_class.returncode == 1 and "pick one of the options" in bad_class.stdout


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
    assert "message for console:alice" in approved.stdout
    assert f"{ref.group(1)}.zip" in approved.stdout
    received = run(cli_env, "received", ref.group(1), "--sender", "console:alice")
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
        "Priya Shah", "Safeguarding Lead", "Northfield NHS Trust", "priya.shah@nhs.net",
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
    assert "Subject: CONFIDENTIAL SH-" in result.stdout
    assert "SMS to +447911123456" in result.stdout
