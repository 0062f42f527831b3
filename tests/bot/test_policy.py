"""The policy file: both shipped schemes load, and every kind of mistake is named."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from bot.policy import PolicyError, load_policy, parse_policy

ROOT = Path(__file__).resolve().parents[2]


def default_doc() -> dict[str, Any]:
    text = resources.files("bot").joinpath("policies/default.toml").read_text()
    return tomllib.loads(text)


def test_default_policy_is_public_controlled_restricted() -> None:
    policy = load_policy()
    assert [lv.name for lv in policy.levels] == ["PUBLIC", "CONTROLLED", "RESTRICTED"]
    public, controlled, restricted = policy.levels
    assert not public.encryption_required and not public.recipient_checks
    assert controlled.approval == "without-agreement" and restricted.approval == "always"
    assert controlled.email_limit_bytes == 13 * 1024 * 1024
    assert "gmail.com" in policy.webmail_domains and "info" in policy.generic_mailboxes
    assert policy.approvers_for("console:alice") == ("console:manager",)
    assert policy.approvers_for("console:manager") == ()  # never yourself


def test_example_policy_is_official_markings() -> None:
    policy = load_policy(ROOT / "examples" / "policy-official.toml")
    assert [lv.name for lv in policy.levels] == ["UNMARKED", "OFFICIAL", "OFFICIAL-SENSITIVE"]
    assert policy.level("OFFICIAL").email_limit_bytes == 30 * 1024 * 1024
    assert policy.level("OFFICIAL-SENSITIVE").approval == "always"


def test_sharing_agreement_decides_approval() -> None:
    policy = load_policy()
    controlled = policy.level("CONTROLLED")
    assert not policy.approval_required(controlled, email="a@trust.nhs.net")
    assert policy.approval_required(controlled, email="a@lawfirm.co.uk")


@pytest.mark.parametrize(("mutate", "named"), [
    (lambda d: d["classification"][1].pop("description"), "classification[1].description"),
    (lambda d: d["classification"][0].update(delivery_methods=["fax"]),
     "classification[0].delivery_methods"),
    (lambda d: d["classification"][2].update(password_methods=[]),
     "classification[2].password_methods"),
    (lambda d: d["classification"][1].update(max_total_mb=0), "classification[1].max_total_mb"),
    (lambda d: d["classification"][1].update(max_total_mb="big"),
     "classification[1].max_total_mb"),
    (lambda d: d["classification"][1].update(approval="sometimes"),
     "classification[1].approval"),
    (lambda d: d["classification"][1].update(default_delivery="portal",
                                             delivery_methods=["archive"]),
     "classification[1].default_delivery"),
    (lambda d: d["classification"].append(dict(d["classification"][0])),
     "classification[3].name"),
    (lambda d: d["password"].update(sms_template="Your code"), "password.sms_template"),
    (lambda d: d["password"].update(sms_template="{reference} {password} {filename}"),
     "password.sms_template"),
    (lambda d: d["password"]["call_window"].update(start="9am"), "password.call_window.start"),
    (lambda d: d["password"]["call_window"].update(end="08:00"), "password.call_window.end"),
    (lambda d: d["password"]["call_window"].update(days=["funday"]),
     "password.call_window.days"),
    (lambda d: d["organisation"].update(timezone="Mars/Olympus"), "organisation.timezone"),
    (lambda d: d["intake"].update(max_file_mb=True), "intake.max_file_mb"),
    (lambda d: d["intake"].update(colour="blue"), "intake.colour"),
    (lambda d: d["approval"].update(approvers={}), "approval.approvers"),
    (lambda d: d["purpose"].update(lawful_bases=[]), "purpose.lawful_bases"),
    (lambda d: d.pop("recipients"), "recipients"),
])
def test_invalid_policy_names_the_key(mutate: Any, named: str) -> None:
    doc = default_doc()
    mutate(doc)
    with pytest.raises(PolicyError) as err:
        parse_policy(doc)
    assert f"`{named}`" in str(err.value)


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot be read"):
        load_policy(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[organisation\nname=")
    with pytest.raises(PolicyError, match="not valid TOML"):
        load_policy(bad)
