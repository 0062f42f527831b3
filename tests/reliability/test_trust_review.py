"""Issue 11, second hostile review: attacks through the command line as real processes
against a real store.

3. a person listed in ``[people]`` with a Teams id in one case and named as approver in the
   other approved their own transfer: Teams ids are compared in one spelling (lower case);
4. ``eve@mißionpartners.org`` matched the agreement ``missionpartners.org`` (Python's IDNA
   2003 codec): agreements match the ASCII domain the address validated to;
5. ``eve@nһs.uk`` (Cyrillic һ) was accepted and shown to the approver as if it were
   nhs.uk: an internationalised domain is refused for anything above PUBLIC;
6. a refused look-up of another person's reference cost an audit write that a made-up one
   did not: both are audited alike.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bot.messages import validation as vmsg
from bot.policy import load_policy
from tests.reliability.test_trust_identity import (
    DEFAULT_POLICY,
    FAKE,
    archives,
    audit_records,
    outbox,
    reference_from,
    run,
    share_args,
)

JANE_LOWER = "teams:6a1d2c3b-0000-4000-8000-0000000b0b00"  # as Teams sends it
JANE_UPPER = JANE_LOWER.upper().replace("TEAMS:", "teams:")  # as pasted from a portal


def policy_file(tmp_path: Path, *, approvers: str, people: str = "",
                agreements: str | None = None, public_approval: str | None = None) -> Path:
    text = DEFAULT_POLICY.read_text()
    text, n = re.subn(r'^"\*" = \[.*\]$', f'"*" = {approvers}', text, flags=re.M)
    assert n == 1
    if people:
        text, n = re.subn(r"^\[people\]$", f"[people]\n{people}", text, flags=re.M)
        assert n == 1
    if agreements is not None:  # the register: one agreement for these domains
        text, n = re.subn(r"\[\[agreement\]\]\n.*?\nreview_by = \S+\n", "", text, flags=re.S)
        assert n >= 1
        categories = [c.key for c in load_policy().information_categories]
        text += ('\n[[agreement]]\nname = "Partners"\norganisation = "Partners"\n'
                 f'domains = {agreements}\nclassifications = ["PUBLIC", "CONTROLLED"]\n'
                 f"information_categories = {json.dumps(categories)}\nreview_by = 2099-12-31\n")
    if public_approval is not None:
        text, n = re.subn(r'(name = "PUBLIC"(?:\n(?!\[\[).*)*?\napproval = )"never"',
                          rf'\1"{public_approval}"', text)
        assert n == 1
    path = tmp_path / "policy.toml"
    path.write_text(text)
    return path


# --- 3. one person, their Teams id in two cases ----------------------------------------------


@pytest.mark.parametrize(("in_people", "in_approvers", "approves_as"), [
    (JANE_UPPER, JANE_LOWER, JANE_LOWER),
    (JANE_LOWER, JANE_UPPER, JANE_LOWER),
    (JANE_LOWER, JANE_LOWER, JANE_UPPER),
])
def test_a_teams_id_in_another_case_is_the_same_person(
        cli_env: dict[str, str], pdf: Path, tmp_path: Path, in_people: str, in_approvers: str,
        approves_as: str) -> None:
    policy = policy_file(tmp_path, approvers=f'["{in_approvers}", "console:director"]',
                         people=f'jane-manager = ["console:manager", "{in_people}"]')
    env = dict(cli_env, SAFEHAVEN_POLICY=str(policy))
    result = run(env, "share", str(pdf), *share_args(classification="RESTRICTED",
                                                     password="sms-on-receipt",
                                                     sender="console:manager"))
    ref = reference_from(result)
    asked = re.search(r"I have asked (.*?); you will hear", result.stdout)
    assert asked and asked.group(1) == "console:director", result.stdout  # not her Teams id
    refused = run(env, "approve", ref, "--approver", approves_as)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "You cannot authorise your own transfer" in refused.stdout
    assert "waiting for approval" in run(env, "status", ref).stdout
    assert archives(env) == [] and ref not in outbox(env)
    assert [r["actor"] for r in audit_records(env, ref)
            if r["action"] == "near_miss"] == [approves_as]
    approved = run(env, "approve", ref, "--approver", "console:director")
    assert approved.returncode == 0, approved.stdout + approved.stderr


def test_a_teams_id_that_is_not_an_object_id_stops_start_up(cli_env: dict[str, str],
                                                            tmp_path: Path) -> None:
    policy = policy_file(tmp_path, approvers='["teams:29:1AbCdEf", "console:director"]')
    result = run(dict(cli_env, SAFEHAVEN_POLICY=str(policy)), "status", FAKE)
    assert result.returncode == 2
    assert "'teams:29:1AbCdEf' is not a Teams user id" in result.stderr


# --- 4. agreements match the domain the address validated to (IDNA 2008) ---------------------


def test_a_german_sharp_s_does_not_match_an_agreement_for_ss(
        cli_env: dict[str, str], pdf: Path, tmp_path: Path) -> None:
    """A level whose approval depends on an agreement and that lets international domains
    through (no recipient checks): mißionpartners.org is xn--miionpartners-cdb.org to
    every mail system, not missionpartners.org."""
    policy = policy_file(tmp_path, approvers='["console:manager"]',
                         agreements='["missionpartners.org", "xn--bcher-kva.example"]',
                         public_approval="without-agreement")
    env = dict(cli_env, SAFEHAVEN_POLICY=str(policy))
    result = run(env, "share", str(pdf), *share_args(
        classification="PUBLIC", org="Mission Partners", email="eve@mißionpartners.org"))
    ref = reference_from(result)
    assert "needs authorising" in result.stdout, result.stdout
    assert archives(env) == []
    (confirmed,) = [r for r in audit_records(env, ref) if r["action"] == "confirmed"]
    approval = confirmed["details"]["approval"]
    assert (approval["rule"], approval["required"], approval["sharing_agreement"]) == (
        "without-agreement", True, None)
    # A real international domain listed in punycode still matches.
    covered = run(env, "share", str(pdf), *share_args(
        classification="PUBLIC", org="Bücher", email="anna@bücher.example"))
    ref = reference_from(covered)
    assert "needs authorising" not in covered.stdout, covered.stdout
    (confirmed,) = [r for r in audit_records(env, ref) if r["action"] == "confirmed"]
    assert confirmed["details"]["approval"]["sharing_agreement"]["name"] == "Partners"


# --- 5. look-alike domains never reach an approver ------------------------------------------


@pytest.mark.parametrize(("email", "domain", "ascii_domain"), [
    ("eve@nһs.uk", "nһs.uk", "xn--ns-4wc.uk"),
    ("eve@trust.nһs.net", "trust.nһs.net", "trust.xn--ns-4wc.net"),
])
@pytest.mark.parametrize("classification", ["CONTROLLED", "RESTRICTED"])
def test_a_look_alike_domain_is_refused_above_public(
        cli_env: dict[str, str], pdf: Path, email: str, domain: str, ascii_domain: str,
        classification: str) -> None:
    password = "sms-on-receipt"  # allowed at both levels: the address is what is refused
    result = run(cli_env, "share", str(pdf), *share_args(classification=classification,
                                                         email=email, password=password))
    assert result.returncode == 1, result.stdout + result.stderr
    said = vmsg.EMAIL_INTERNATIONAL_DOMAIN.format(domain=domain, ascii_domain=ascii_domain)
    assert f"error: --recipient-email: {said}" in result.stdout
    assert "needs authorising" not in result.stdout and "I have asked" not in result.stdout
    assert archives(cli_env) == [] and outbox(cli_env) == ""


# --- 6. a made-up reference costs the same work as another person's --------------------------


def test_a_made_up_reference_is_audited_like_another_persons(
        cli_env: dict[str, str], pdf: Path) -> None:
    real = reference_from(run(cli_env, "share", str(pdf), *share_args(
        classification="RESTRICTED", password="sms-on-receipt")))
    long = "SH-" + "Z" * 300  # not a reference's form: a usage error, before any lookup
    for command in (["cancel", "--sender", "console:mallory"],
                    ["received", "--sender", "console:mallory"],
                    ["approve", "--approver", "console:mallory"]):
        answers = {ref: run(cli_env, command[0], ref, *command[1:]) for ref in (real, FAKE)}
        assert len({a.returncode for a in answers.values()}) == 1
        assert answers[real].stdout.replace(real, "REF") == \
            answers[FAKE].stdout.replace(FAKE, "REF")
        malformed = run(cli_env, command[0], long, *command[1:])
        assert malformed.returncode == 2 and "SH-7K3Q-9F" in malformed.stderr, malformed.stderr
    shapes = {}
    for ref in (real, FAKE):
        refused = [r for r in audit_records(cli_env, ref) if r["action"] == "access_refused"]
        assert [r["actor"] for r in refused] == ["console:mallory"] * 3, ref
        shapes[ref] = [r["details"] for r in refused]
    assert shapes[real] == shapes[FAKE]
    assert run(cli_env, "audit", "verify").returncode == 0
