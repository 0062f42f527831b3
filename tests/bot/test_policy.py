"""The policy file: both shipped schemes load, and every kind of mistake is named."""

from __future__ import annotations

import tomllib
from datetime import UTC, date, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from bot.agreements import AgreementCheck, AgreementGap
from bot.policy import PolicyError, load_policy, parse_policy
from bot.recipients import check_email

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 12, 3, 12, tzinfo=UTC)  # before every review_by in the shipped policies


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
    assert policy.governance_ids() == ("console:governance",)  # told of a mistake


def test_sharing_agreement_decides_approval() -> None:
    policy = load_policy()
    controlled = policy.level("CONTROLLED")
    assert not policy.approval_required(controlled, email_domain="nhs.net", now=NOW)
    assert policy.approval_required(controlled, email_domain="lawfirm.co.uk", now=NOW)
    # The old flat list covered all of gov.uk and sch.uk; the register names organisations.
    for domain in ("kent.gov.uk", "school.sch.uk", "trust.nhs.net"):
        assert policy.approval_required(controlled, email_domain=domain, now=NOW), domain


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


def agreement(**changes: Any) -> dict[str, Any]:
    """An [[agreement]] table as TOML reads it, with ``changes``."""
    table: dict[str, Any] = {
        "name": "NHS partners", "organisation": "Northfield NHS Trust",
        "domains": ["nhs.net", "*.nhs.net"], "classifications": ["CONTROLLED"],
        "information_categories": ["health", "safeguarding"], "review_by": date(2030, 1, 31),
        "reference": "ISA-7", "owner": "IG Group"}
    table.update(changes)
    return {k: v for k, v in table.items() if v is not None}


def register_doc(*tables: dict[str, Any]) -> dict[str, Any]:
    doc = default_doc()
    doc["agreement"] = list(tables)
    return doc


def test_the_default_register_names_its_agreements() -> None:
    policy = load_policy()
    names = {a.name: a for a in policy.agreements}
    nhs = names["NHS health and care partners"]
    assert nhs.domains == ("nhs.net",) and nhs.reference == "ISA-2025-004"
    assert nhs.classifications == ("CONTROLLED",) and "health" in nhs.information_categories
    assert isinstance(nhs.review_by, date)
    assert not any(d.endswith(("gov.uk", "sch.uk")) for a in policy.agreements
                   for d in a.domains)


def test_an_agreement_is_read_with_every_field() -> None:
    policy = parse_policy(register_doc(agreement(domains=["NHS.net", "*.NHS.net", "nhs.net"])))
    (found,) = policy.agreements
    assert found.domains == ("nhs.net", "*.nhs.net")
    assert found.information_categories == ("health", "safeguarding")
    assert (found.review_by, found.reference, found.owner) == (date(2030, 1, 31), "ISA-7",
                                                               "IG Group")
    bare = parse_policy(register_doc(agreement(reference=None, owner=None))).agreements[0]
    assert bare.reference is None and bare.owner is None


def test_agreements_match_the_recipients_email_domain_only() -> None:
    """Exact domains, "*.domain" for subdomains, never a look-alike; and the organisation a
    sender types plays no part (only the validated address's domain is checked)."""
    policy = parse_policy(register_doc(agreement(domains=["nhs.net"]),
                                       agreement(name="CJSM", reference="ISA-8",
                                                 domains=["*.cjsm.net"])))
    controlled = policy.level("CONTROLLED")

    def covered(address: str) -> str | None:
        check = policy.agreement_check(controlled, email_domain=email_domain(address),
                                       now=NOW)
        return check.agreement.name if check.covered and check.agreement else None

    assert covered("x@nhs.net") == covered("X@NHS.Net") == "NHS partners"
    assert covered("x@cps.gov.uk.cjsm.net") == covered("x@a.b.cjsm.net") == "CJSM"
    # "nhs.net" is that domain only; "*.cjsm.net" its subdomains only.
    assert covered("x@trust.nhs.net") is None and covered("x@cjsm.net") is None
    for address in ("x@evilnhs.net", "x@nhs.net.evil.example", "x@evil-exfil.example",
                    "x@nһs.net", "x@evilcjsm.net", "x@cjsm.net.evil.example"):
        assert covered(address) is None, address
        assert policy.approval_required(controlled, email_domain=email_domain(address),
                                        now=NOW), address
    for domain in ("", "net", "eve@nhs.net", "nhs-net"):
        assert policy.approval_required(controlled, email_domain=domain, now=NOW), domain
    assert not policy.approval_required(policy.level("PUBLIC"),
                                        email_domain="evil-exfil.example", now=NOW)
    assert policy.approval_required(policy.level("RESTRICTED"), email_domain="nhs.net",
                                    now=NOW)


def test_an_agreement_past_its_review_date_counts_as_absent() -> None:
    """Live up to and including review_by, in the policy's time zone, on the clock given."""
    policy = parse_policy(register_doc(agreement(review_by=date(2026, 6, 30))))
    controlled = policy.level("CONTROLLED")

    def check(now: datetime) -> AgreementCheck:
        return policy.agreement_check(controlled, email_domain="nhs.net", now=now)

    # 23:30 UTC on 30 June is 00:30 on 1 July in London (BST): lapsed there, not in UTC.
    assert check(datetime(2026, 6, 30, 22, 59, tzinfo=UTC)).covered
    lapsed = check(datetime(2026, 6, 30, 23, 30, tzinfo=UTC))
    assert not lapsed.covered and lapsed.gap is AgreementGap.LAPSED
    assert lapsed.agreement is not None and lapsed.agreement.name == "NHS partners"
    assert policy.approval_required(controlled, email_domain="nhs.net",
                                    now=datetime(2026, 7, 1, 9, tzinfo=UTC))


def test_an_agreement_allows_only_its_classifications_and_categories() -> None:
    policy = parse_policy(register_doc(agreement(domains=["nhs.net"])))
    controlled, restricted = policy.level("CONTROLLED"), policy.level("RESTRICTED")
    ok = policy.agreement_check(controlled, email_domain="nhs.net", now=NOW,
                                categories=("health",))
    assert ok.covered
    # Categories not answered yet: domain and classification only.
    assert policy.agreement_check(controlled, email_domain="nhs.net", now=NOW).covered
    wrong = policy.agreement_check(controlled, email_domain="nhs.net", now=NOW,
                                   categories=("health", "financial"))
    assert wrong.gap is AgreementGap.CATEGORY and wrong.categories == ("financial",)
    assert policy.approval_required(controlled, email_domain="nhs.net", now=NOW,
                                    categories=("financial",))
    level = policy.agreement_check(restricted, email_domain="nhs.net", now=NOW)
    assert level.gap is AgreementGap.CLASSIFICATION
    none = policy.agreement_check(controlled, email_domain="lawfirm.co.uk", now=NOW)
    assert none.gap is AgreementGap.NO_AGREEMENT and none.agreement is None


def test_a_live_agreement_wins_over_a_lapsed_one_for_the_same_domain() -> None:
    policy = parse_policy(register_doc(
        agreement(name="Old", reference="ISA-1", review_by=date(2020, 1, 1)),
        agreement(name="New", reference="ISA-2")))
    check = policy.agreement_check(policy.level("CONTROLLED"), email_domain="nhs.net",
                                   now=NOW)
    assert check.covered and check.agreement is not None and check.agreement.name == "New"


def test_the_old_flat_list_is_refused_with_how_to_convert() -> None:
    doc = default_doc()
    doc["recipients"]["sharing_agreements"] = ["nhs.net", "gov.uk"]
    with pytest.raises(PolicyError) as err:
        parse_policy(doc)
    text = str(err.value)
    assert "`recipients.sharing_agreements`" in text and "[[agreement]]" in text
    assert "*.nhs.net" in text and "review_by" in text


@pytest.mark.parametrize(("changes", "named", "says"), [
    ({"name": None}, "agreement[0].name", "required"),
    ({"organisation": " "}, "agreement[0].organisation", "empty"),
    ({"domains": []}, "agreement[0].domains", "at least one"),
    ({"domains": ["Northfield NHS Trust"]}, "agreement[0].domains", "not an email domain"),
    ({"domains": ["@nhs.net"]}, "agreement[0].domains", "not an email domain"),
    ({"domains": ["https://nhs.net"]}, "agreement[0].domains", "not an email domain"),
    ({"domains": ["*nhs.net"]}, "agreement[0].domains", "not an email domain"),
    ({"domains": ["*.*.nhs.net"]}, "agreement[0].domains", "not an email domain"),
    ({"domains": ["x@nhs.net"]}, "agreement[0].domains", "not an email domain"),
    ({"domains": ["net"]}, "agreement[0].domains", "not an email domain"),
    ({"domains": ["*.gov.uk"]}, "agreement[0].domains", "every organisation under gov.uk"),
    ({"domains": ["*.sch.uk"]}, "agreement[0].domains", "every organisation under sch.uk"),
    ({"domains": ["gmail.com"]}, "agreement[0].domains", "webmail"),
    ({"classifications": []}, "agreement[0].classifications", "at least one"),
    ({"classifications": ["SECRET"]}, "agreement[0].classifications", "not one of"),
    ({"information_categories": ["gossip"]}, "agreement[0].information_categories",
     "not one of"),
    ({"information_categories": []}, "agreement[0].information_categories", "at least one"),
    ({"review_by": None}, "agreement[0].review_by", "required"),
    ({"review_by": "2030-01-31"}, "agreement[0].review_by", "TOML date"),
    ({"review_by": datetime(2030, 1, 31, 12, tzinfo=UTC)}, "agreement[0].review_by",
     "TOML date"),
    ({"expires": date(2030, 1, 1)}, "agreement[0].expires", "unknown key"),
])
def test_a_bad_agreement_is_refused_naming_the_key(changes: dict[str, Any], named: str,
                                                   says: str) -> None:
    with pytest.raises(PolicyError) as err:
        parse_policy(register_doc(agreement(**changes)))
    assert f"`{named}`" in str(err.value) and says in str(err.value), str(err.value)


def test_agreement_names_and_references_are_unique() -> None:
    with pytest.raises(PolicyError, match=r"`agreement\[1\]\.name`.*twice"):
        parse_policy(register_doc(agreement(), agreement(name="nhs PARTNERS", reference="X")))
    with pytest.raises(PolicyError, match=r"`agreement\[1\]\.reference`.*twice"):
        parse_policy(register_doc(agreement(), agreement(name="Other")))


def test_agreement_categories_need_the_policys_categories() -> None:
    doc = register_doc(agreement())
    doc.pop("information_category", None)
    with pytest.raises(PolicyError, match=r"`agreement\[0\]\.information_categories`.*no "
                       "information"):
        parse_policy(doc)
    doc["agreement"] = [agreement(information_categories=None)]
    assert parse_policy(doc).agreements[0].information_categories == ()


def test_agreement_domains_are_compared_in_lower_case_and_idna_2008() -> None:
    policy = parse_policy(register_doc(agreement(domains=["xn--bcher-kva.example"])))
    controlled = policy.level("CONTROLLED")
    assert policy.agreement_check(controlled, now=NOW,
                                  email_domain=email_domain("a@bücher.example")).covered
    # IDNA 2008, as mail is delivered: "mißion" is not "mission" (Python's codec says it is).
    policy = parse_policy(register_doc(agreement(domains=["missionpartners.org"])))
    assert not policy.agreement_check(
        controlled, now=NOW, email_domain=email_domain("eve@mißionpartners.org")).covered


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
