"""The register of information-sharing agreements through the real entry points: ``safehaven
agreements`` (what is due for review, ``--check``), and ``safehaven share`` run as a process
against a real store: a CONTROLLED share outside every live agreement waits for a manager
and says why, one inside an agreement goes and its record names the agreement.

Review-by dates are set relative to today in the policy's time zone (the command reads the
real clock), days apart, so no test depends on the time of day.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.vault import generate_key
from tests.support.core import PDF

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_POLICY = ROOT / "bot" / "policies" / "default.toml"
TODAY = datetime.now(ZoneInfo("Europe/London")).date()


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot.app.cli", *args], env=env, text=True,
                          capture_output=True, timeout=120, cwd=ROOT, check=False)


def agreement(name: str, *, reference: str, domains: str, review_by: date,
              classifications: str = '["CONTROLLED"]',
              categories: str = '["contact-details", "other-personal"]') -> str:
    return (f'[[agreement]]\nname = "{name}"\nreference = "{reference}"\n'
            f'organisation = "{name} Ltd"\nowner = "IG Group"\ndomains = {domains}\n'
            f"classifications = {classifications}\ninformation_categories = {categories}\n"
            f"review_by = {review_by.isoformat()}\n\n")


def policy_with(tmp_path: Path, *agreements: str) -> Path:
    """The shipped policy with its register replaced by ``agreements``."""
    text, n = re.subn(r"\[\[agreement\]\]\n.*?\nreview_by = \S+\n", "",
                      DEFAULT_POLICY.read_text(), flags=re.S)
    assert n >= 1
    path = tmp_path / "policy.toml"
    path.write_text(text + "\n" + "".join(agreements))
    return path


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SAFEHAVEN_", "TWILIO_"))}
    env.update(SAFEHAVEN_VAR_DIR=str(tmp_path / "var"), SAFEHAVEN_SECRET_KEY=generate_key(),
               SAFEHAVEN_LOG_LEVEL="WARNING")
    return env


# --- safehaven agreements ---------------------------------------------------------------------


def test_agreements_lists_the_register_and_what_is_due(env: dict[str, str],
                                                       tmp_path: Path) -> None:
    policy = policy_with(
        tmp_path,
        agreement("Lapsed Trust", reference="ISA-1", domains='["old.example"]',
                  review_by=TODAY - timedelta(days=10)),
        agreement("Soon Council", reference="ISA-2", domains='["soon.example"]',
                  review_by=TODAY + timedelta(days=12)),
        agreement("Live Partner", reference="ISA-3", domains='["live.example", "*.live.example"]',
                  review_by=TODAY + timedelta(days=200)))
    env["SAFEHAVEN_POLICY"] = str(policy)
    listed = run(env, "agreements")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    text = listed.stdout
    for name, ref in (("Lapsed Trust", "ISA-1"), ("Soon Council", "ISA-2"),
                      ("Live Partner", "ISA-3")):
        assert f"{name} ({ref})" in text
    assert "domains: live.example, *.live.example" in text
    assert re.search(r"^LAPSED\s+Lapsed Trust", text, re.M)
    assert re.search(r"^DUE\s+Soon Council", text, re.M)
    assert re.search(r"^live\s+Live Partner", text, re.M)
    due = text[text.index("Due for review:"):]
    assert "LAPSED 10 days ago: Lapsed Trust" in due
    assert "due in 12 days: Soon Council" in due
    assert "Live Partner" not in due

    checked = run(env, "agreements", "--check")
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert "1 agreement past their review-by date count as absent" in checked.stdout

    narrower = run(env, "agreements", "--within", "5")
    assert "Soon Council" not in narrower.stdout[narrower.stdout.index("Due for review:"):]


def test_agreements_check_passes_when_none_has_lapsed(env: dict[str, str],
                                                      tmp_path: Path) -> None:
    """Due within the window is a warning, not a failure; the review-by day itself is live."""
    env["SAFEHAVEN_POLICY"] = str(policy_with(
        tmp_path,
        agreement("Today Trust", reference="ISA-1", domains='["today.example"]',
                  review_by=TODAY + timedelta(days=1)),
        agreement("Live Partner", reference="ISA-2", domains='["live.example"]',
                  review_by=TODAY + timedelta(days=400))))
    checked = run(env, "agreements", "--check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "due in 1 day: Today Trust" in checked.stdout


def test_agreements_with_an_old_policy_file_says_how_to_convert(env: dict[str, str],
                                                                tmp_path: Path) -> None:
    path = policy_with(tmp_path)
    text = path.read_text().replace(
        "[purpose]", 'sharing_agreements = ["nhs.net", "gov.uk"]\n\n[purpose]', 1)
    path.write_text(text)
    env["SAFEHAVEN_POLICY"] = str(path)
    result = run(env, "agreements", "--check")
    assert result.returncode == 2
    assert "`recipients.sharing_agreements`" in result.stderr
    assert "[[agreement]]" in result.stderr


# --- safehaven share --------------------------------------------------------------------------


def share(env: dict[str, str], pdf: Path, *, email: str, category: str = "contact-details",
          org: str = "Anything Ltd") -> subprocess.CompletedProcess[str]:
    return run(env, "share", str(pdf), "--classification", "CONTROLLED",
               "--category", category, "--recipient-name", "Priya Shah",
               "--recipient-title", "Safeguarding Lead", "--recipient-org", org,
               "--recipient-email", email, "--recipient-phone", "07911 123456",
               "--purpose", "Strategy meeting about a child at risk",
               "--consent", "Only for the strategy meeting", "--onward-sharing", "no",
               "--delete-after-use", "--lawful-basis", "UK GDPR Art 6(1)(e) public task",
               "--password-via", "sms", "--sender", "console:alice")


def reference_from(result: subprocess.CompletedProcess[str]) -> str:
    found = re.search(r"reference: (SH-\S+)", result.stdout)
    assert result.returncode == 0 and found, result.stdout + result.stderr
    return found.group(1)


def records(env: dict[str, str], reference: str, action: str) -> list[dict[str, Any]]:
    result = run(env, "audit", "export", "--format", "json")
    assert result.returncode == 0, result.stderr
    found = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    return [r for r in found if r["reference"] == reference and r["action"] == action]


@pytest.fixture
def pdf(tmp_path: Path) -> Path:
    path = tmp_path / "referral.pdf"
    path.write_bytes(PDF)
    return path


@pytest.fixture
def register_env(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    env["SAFEHAVEN_POLICY"] = str(policy_with(
        tmp_path,
        agreement("NHS partners", reference="ISA-7", domains='["nhs.net"]',
                  review_by=TODAY + timedelta(days=90)),
        agreement("Old Trust", reference="ISA-2", domains='["oldtrust.example"]',
                  review_by=TODAY - timedelta(days=3))))
    return env


def test_a_share_outside_every_agreement_waits_and_says_why(register_env: dict[str, str],
                                                            pdf: Path) -> None:
    """The organisation typed is "NHS partners": it plays no part; the domain decides."""
    result = share(register_env, pdf, email="p.shah@northfield-law.co.uk", org="NHS partners")
    ref = reference_from(result)
    assert "needs authorising" in result.stdout, result.stdout
    reason = ("No information-sharing agreement covers northfield-law.co.uk for CONTROLLED "
              "data; a manager must authorise it.")
    assert reason in result.stdout
    assert not list((Path(register_env["SAFEHAVEN_VAR_DIR"]) / "archives").glob("*.zip"))
    (confirmed,) = records(register_env, ref, "confirmed")
    approval = confirmed["details"]["approval"]
    assert approval["required"] is True and approval["sharing_agreement"] is None
    assert approval["agreement_gap"] == "no-agreement" and approval["reason"] == reason
    (requested,) = records(register_env, ref, "approval_requested")
    assert requested["details"]["reason"] == reason
    assert requested["details"]["agreement_gap"] == "no-agreement"


def test_a_share_under_a_lapsed_agreement_waits_and_says_it_lapsed(
        register_env: dict[str, str], pdf: Path) -> None:
    result = share(register_env, pdf, email="p.shah@oldtrust.example")
    ref = reference_from(result)
    assert "needs authorising" in result.stdout, result.stdout
    lapsed_on = (TODAY - timedelta(days=3)).isoformat()
    assert (f'The information-sharing agreement "Old Trust" with Old Trust Ltd was due for '
            f"review by {lapsed_on} and has lapsed") in result.stdout
    (confirmed,) = records(register_env, ref, "confirmed")
    assert confirmed["details"]["approval"]["agreement_gap"] == "lapsed"
    assert confirmed["details"]["approval"]["sharing_agreement"] is None


def test_a_share_inside_an_agreement_goes_and_the_record_names_it(
        register_env: dict[str, str], pdf: Path) -> None:
    result = share(register_env, pdf, email="priya.shah@nhs.net")
    ref = reference_from(result)
    assert "needs authorising" not in result.stdout, result.stdout
    assert f"{ref}.zip" in result.stdout
    (confirmed,) = records(register_env, ref, "confirmed")
    approval = confirmed["details"]["approval"]
    assert approval["required"] is False and approval["reason"] is None
    assert approval["sharing_agreement"] == {
        "name": "NHS partners", "reference": "ISA-7", "organisation": "NHS partners Ltd",
        "review_by": (TODAY + timedelta(days=90)).isoformat()}
    assert approval["agreement_gap"] is None
    assert records(register_env, ref, "approval_requested") == []


def test_a_category_the_agreement_does_not_allow_needs_approval(
        register_env: dict[str, str], pdf: Path) -> None:
    """The agreement allows contact details; financial data to the same domain waits."""
    result = share(register_env, pdf, email="priya.shah@nhs.net", category="financial")
    ref = reference_from(result)
    assert ('The information-sharing agreement "NHS partners" covers nhs.net for CONTROLLED '
            "data but not this kind of information: Financial") in result.stdout
    (confirmed,) = records(register_env, ref, "confirmed")
    assert confirmed["details"]["approval"]["agreement_gap"] == "category-not-covered"
