"""The policy file: both shipped schemes load, and every kind of mistake is named."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from bot.policy import PolicyError, load_policy, parse_policy
from bot.recipients import check_email

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
    assert not policy.approval_required(controlled, email_domain="trust.nhs.net")
    assert policy.approval_required(controlled, email_domain="lawfirm.co.uk")


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


def email_domain(address: str) -> str:
    """The ASCII domain an address validates to, as the engine keeps it."""
    return check_email(address, protected=False, webmail_domains=(),
                       generic_mailboxes=()).ascii_domain


def test_agreements_match_the_recipients_email_domain_only() -> None:
    """Issue 11: "nhs.net" covers the domain and its subdomains, never a look-alike, and the
    organisation a sender types plays no part (approval_required takes only the validated
    address's domain)."""
    policy = load_policy()
    covered = ["x@nhs.net", "x@trust.nhs.net", "X@Trust.NHS.Net", "x@a.b.nhs.net"]
    assert [policy.sharing_agreement_for(email_domain(e)) for e in covered] == ["nhs.net"] * 4
    for domain in ("evilnhs.net", "nhs.net.evil.example", "evil-exfil.example", "eve@nhs.net",
                   "", "net", "nhs-net", email_domain("eve@nһs.net")):
        assert policy.sharing_agreement_for(domain) is None, domain
        assert policy.approval_required(policy.level("CONTROLLED"), email_domain=domain), domain
    assert not policy.approval_required(policy.level("PUBLIC"), email_domain="evil-exfil.example")
    assert policy.approval_required(policy.level("RESTRICTED"), email_domain="nhs.net")


@pytest.mark.parametrize("entry", ["Northfield NHS Trust", "@nhs.net", "*.nhs.net",
                                   "https://nhs.net", "net", "nhs..net", "-nhs.net",
                                   "nhs.net/x", "nhs .net", "x@nhs.net"])
def test_an_agreement_that_is_not_a_domain_is_refused(entry: str) -> None:
    doc = default_doc()
    doc["recipients"]["sharing_agreements"] = ["nhs.net", entry]
    with pytest.raises(PolicyError) as err:
        parse_policy(doc)
    assert "`recipients.sharing_agreements`" in str(err.value)
    assert f"{entry!r} is not an email domain" in str(err.value)


def test_agreement_domains_are_compared_in_lower_case() -> None:
    doc = default_doc()
    doc["recipients"]["sharing_agreements"] = ["NHS.net", "nhs.net", "xn--bcher-kva.example"]
    policy = parse_policy(doc)
    assert policy.sharing_agreements == ("nhs.net", "xn--bcher-kva.example")
    assert policy.sharing_agreement_for(email_domain("a@bücher.example")) == \
        "xn--bcher-kva.example"
    # IDNA 2008, as mail is delivered: "mißion" is not "mission" (Python's codec says it is).
    doc["recipients"]["sharing_agreements"] = ["missionpartners.org"]
    assert parse_policy(doc).sharing_agreement_for(
        email_domain("eve@mißionpartners.org")) is None


def people_doc(people: dict[str, Any], approvers: dict[str, Any] | None = None
               ) -> dict[str, Any]:
    doc = default_doc()
    doc["people"] = people
    if approvers is not None:
        doc["approval"]["approvers"] = approvers
    return doc


JANE_TEAMS = "teams:6a1d2c3b-0000-4000-8000-0000000b0b00"


def test_people_make_one_person_of_several_ids() -> None:
    policy = parse_policy(people_doc(
        {"jane-manager": ["console:manager", "slack:UMGR0001", JANE_TEAMS],
         "dan": ["console:director"]},
        {"*": ["jane-manager", "console:director"], "jane-manager": ["dan"]}))
    assert policy.same_person("console:manager", "slack:UMGR0001")
    assert policy.same_person(JANE_TEAMS, "console:manager")
    assert not policy.same_person("console:manager", "console:director")
    assert not policy.same_person("console:alice", "console:bob")
    assert policy.same_person("console:alice", "console:alice")  # unlisted: itself
    # A person's name is not an id: typing it as one is somebody else.
    assert not policy.same_person("jane-manager", "console:manager")
    assert policy.is_one_of("slack:UMGR0001", ["console:manager"])
    # Approvers named by person stand for all their ids; the sender is never asked, under
    # any id, and a sender's entry may be their person.
    assert policy.approvers_for("console:alice") == (
        "console:manager", "slack:UMGR0001", JANE_TEAMS, "console:director")
    assert policy.approvers_for("slack:UMGR0001") == ("console:director",)
    assert policy.approvers_for("console:director") == (
        "console:manager", "slack:UMGR0001", JANE_TEAMS)


@pytest.mark.parametrize(("people", "approvers", "named", "says"), [
    ({"jane": ["console:manager"], "john": ["slack:U1", "console:manager"]}, None,
     "people.john", "already listed for 'jane'"),
    ({"jane": ["manager"]}, None, "people.jane", "not a channel-qualified user id"),
    ({"jane": []}, None, "people.jane", "at least one user id"),
    ({"jane": "console:manager"}, None, "people.jane", "must be a list"),
    ({"console:jane": ["console:manager"]}, None, "people.console:jane", "with no ':'"),
    ({}, {"*": ["jane-manager"]}, "approval.approvers.*", "neither a person"),
    ({}, {"alice": ["console:manager"]}, "approval.approvers.alice",
     "not a channel-qualified user id"),
])
def test_invalid_people_and_approvers_name_the_key(people: dict[str, Any],
                                                   approvers: dict[str, Any] | None,
                                                   named: str, says: str) -> None:
    with pytest.raises(PolicyError) as err:
        parse_policy(people_doc(people, approvers))
    assert f"`{named}`" in str(err.value) and says in str(err.value)
