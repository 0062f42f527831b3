"""Recipient details: who may receive protected information, and numbers we can call."""

from __future__ import annotations

import random
from collections.abc import Callable
from functools import partial

import phonenumbers
import pytest

from bot.messages import validation as msg
from bot.recipients import (
    DEFAULT_GENERIC_MAILBOXES,
    DEFAULT_WEBMAIL_DOMAINS,
    DISTRIBUTION_LIST_PREFIXES,
    PhoneNumber,
    RecipientError,
    check_email,
    check_name,
    parse_phone,
)


def email(address: str, *, protected: bool = True, **extra: object) -> str:
    return check_email(
        address,
        protected=protected,
        webmail_domains=DEFAULT_WEBMAIL_DOMAINS,
        generic_mailboxes=DEFAULT_GENERIC_MAILBOXES,
        **extra,  # type: ignore[arg-type]
    ).address


# --- email -----------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("julia.smith@kent.gov.uk", "julia.smith@kent.gov.uk"),
        ("  Julia.Smith@Kent.GOV.UK ", "Julia.Smith@kent.gov.uk"),
        ("j.bloggs@nhs.net", "j.bloggs@nhs.net"),
        ("info.dept@nhs.net", "info.dept@nhs.net"),  # not exactly "info"
        ("information.governance@council.gov.uk", "information.governance@council.gov.uk"),
        ("allan.jones@police.uk", "allan.jones@police.uk"),  # "all" without a separator
        ("dlewis@school.sch.uk", "dlewis@school.sch.uk"),
        ("someone@notgmail.com", "someone@notgmail.com"),  # only exact domain or subdomain
    ],
)
def test_work_addresses_accepted_when_protected(address: str, expected: str) -> None:
    assert email(address) == expected


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("someone@gmail.com", "personal email"),
        ("Someone@GoogleMail.com", "personal email"),
        ("a.person@hotmail.co.uk", "personal email"),
        ("a.person@uk.yahoo.com", "personal email"),  # subdomain of a listed domain
        ("x@icloud.com", "personal email"),
        ("info@nhs.net", "shared mailbox"),
        ("INFO@nhs.net", "shared mailbox"),
        ("info+referrals@nhs.net", "shared mailbox"),  # "+tag" stripped first
        ("enquiries@kent.gov.uk", "shared mailbox"),
        ("reception@school.sch.uk", "shared mailbox"),
        ("all-staff@kent.gov.uk", "distribution list"),
        ("all.social.workers@kent.gov.uk", "distribution list"),
        ("everyone@kent.gov.uk", "distribution list"),
        ("staff-list@kent.gov.uk", "distribution list"),
        ("dl-finance@kent.gov.uk", "distribution list"),
        ("group-mash+x@kent.gov.uk", "distribution list"),
    ],
)
def test_protected_refusals_name_the_reason(address: str, reason: str) -> None:
    with pytest.raises(RecipientError) as err:
        email(address)
    assert err.value.field == "email"
    assert reason in err.value.message
    assert "work email address" in err.value.message  # says what to do instead
    assert str(err.value) == err.value.message


@pytest.mark.parametrize("address", ["someone@gmail.com", "info@nhs.net", "all-staff@kent.gov.uk"])
def test_public_information_may_go_anywhere_valid(address: str) -> None:
    assert email(address, protected=False) == address


@pytest.mark.parametrize(("address", "ascii_domain"), [
    ("eve@nһs.uk", "xn--ns-4wc.uk"),                             # Cyrillic һ, looks like nhs.uk
    ("eve@mißionpartners.org", "xn--miionpartners-cdb.org"),     # not missionpartners.org
    ("eve@trust.nһs.net", "trust.xn--ns-4wc.net"),
    ("a@bücher.example", "xn--bcher-kva.example"),
])
def test_an_international_domain_is_refused_for_protected_information(
        address: str, ascii_domain: str) -> None:
    """Second review, finding 5: a look-alike domain never reaches the approver as if it
    were the real one. Public information may still go there, with the ASCII domain kept."""
    with pytest.raises(RecipientError) as err:
        email(address)
    domain = address.rsplit("@", 1)[1]
    assert err.value.field == "email"
    assert err.value.message == msg.EMAIL_INTERNATIONAL_DOMAIN.format(
        domain=domain, ascii_domain=ascii_domain)
    checked = check_email(address, protected=False, webmail_domains=DEFAULT_WEBMAIL_DOMAINS,
                          generic_mailboxes=DEFAULT_GENERIC_MAILBOXES)
    assert checked.address == address and checked.ascii_domain == ascii_domain


def test_the_ascii_domain_is_the_validators() -> None:
    """Finding 4: IDNA 2008 as mail systems use it (Python's IDNA 2003 codec would read
    "mißion" as "mission"), lower case."""
    checked = check_email("Julia.Smith@Trust.NHS.net", protected=True,
                          webmail_domains=DEFAULT_WEBMAIL_DOMAINS,
                          generic_mailboxes=DEFAULT_GENERIC_MAILBOXES)
    assert checked.address == "Julia.Smith@trust.nhs.net"
    assert checked.ascii_domain == "trust.nhs.net"
    assert "mißion.org".encode("idna") == b"mission.org"  # the codec no longer used


def test_webmail_message_names_the_domain() -> None:
    with pytest.raises(RecipientError) as err:
        email("x@hotmail.com")
    assert err.value.message == msg.EMAIL_WEBMAIL.format(domain="hotmail.com")


def test_policy_lists_are_compared_without_case_or_at_sign() -> None:
    with pytest.raises(RecipientError):
        check_email("a@example.org", protected=True, webmail_domains=["@Example.ORG"],
                    generic_mailboxes=[])
    with pytest.raises(RecipientError):
        check_email("Office@x.gov.uk", protected=True, webmail_domains=[],
                    generic_mailboxes=["OFFICE"])


def test_distribution_prefixes_can_be_extended() -> None:
    assert email("list-children@kent.gov.uk") == "list-children@kent.gov.uk"
    with pytest.raises(RecipientError, match="distribution list"):
        email("list-children@kent.gov.uk",
              distribution_prefixes=(*DISTRIBUTION_LIST_PREFIXES, "list-"))


@pytest.mark.parametrize(
    "address", ["", "   ", "bad", "a@b", "a b@c.com", "a@@b.com", "@kent.gov.uk", "x@" + "a" * 400,
                "julia\x00@kent.gov.uk", "a@b.com, c@d.com"],
)
def test_malformed_addresses_refused_with_explanation(address: str) -> None:
    with pytest.raises(RecipientError) as err:
        email(address, protected=False)
    assert err.value.field == "email"
    assert "name@organisation.gov.uk" in err.value.message


def test_syntax_message_carries_library_explanation() -> None:
    with pytest.raises(RecipientError) as err:
        email("no-at-sign.kent.gov.uk")
    assert "@-sign" in err.value.message


# --- phone -----------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "region", "e164", "extension", "mobile", "display"),
    [
        ("07911 123456", "GB", "+447911123456", None, True, "+44 7911 123456"),
        ("+44 (0)7911 123456", "GB", "+447911123456", None, True, "+44 7911 123456"),
        ("020 7946 0000", "GB", "+442079460000", None, False, "+44 20 7946 0000"),
        ("020 7946 0000 ext 123", "GB", "+442079460000", "123", False,
         "+44 20 7946 0000 ext. 123"),
        ("0161 496 0000 x12", "GB", "+441614960000", "12", False, "+44 161 496 0000 ext. 12"),
        ("0161 496 0000 ext. 7", "GB", "+441614960000", "7", False, "+44 161 496 0000 ext. 7"),
        ("+33 6 12 34 56 78", "GB", "+33612345678", None, True, "+33 6 12 34 56 78"),
        # US numbers cannot be told apart: FIXED_LINE_OR_MOBILE counts as mobile.
        ("(212) 555-0100", "US", "+12125550100", None, True, "+1 212-555-0100"),
    ],
)
def test_valid_numbers(text: str, region: str, e164: str, extension: str | None,
                       mobile: bool, display: str) -> None:
    assert parse_phone(text, default_region=region) == PhoneNumber(
        e164=e164, extension=extension, is_mobile=mobile, display=display
    )


def _national_example(region: str) -> str:
    number = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.FIXED_LINE)
    assert number is not None
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL))


@pytest.mark.parametrize("region", ["GB", "US"])
@pytest.mark.parametrize(
    "text", ["12345", "abc", "999", "07911 12345", "+44 20 7946 000", "0000000000", "++44"]
)
def test_invalid_numbers_refused_with_an_example_for_the_region(text: str, region: str) -> None:
    with pytest.raises(RecipientError) as err:
        parse_phone(text, default_region=region)
    assert err.value.field == "phone"
    assert _national_example(region) in err.value.message


@pytest.mark.parametrize("text", ["", "   ", "0" * 100, "07911\n123456", "07911\x00123456"])
def test_missing_long_or_odd_phone_input_refused(text: str) -> None:
    with pytest.raises(RecipientError) as err:
        parse_phone(text, default_region="GB")
    assert err.value.field == "phone"
    assert _national_example("GB") in err.value.message


def test_one_example_where_mobiles_and_landlines_look_alike() -> None:
    with pytest.raises(RecipientError) as err:
        parse_phone("555", default_region="US")
    expected = msg.PHONE_INVALID_ONE_EXAMPLE.format(example=_national_example("US"))
    assert err.value.message == expected


def test_unknown_region_asks_for_country_code() -> None:
    with pytest.raises(RecipientError) as err:
        parse_phone("07911 123456", default_region="XX")
    assert err.value.message == msg.PHONE_UNKNOWN_COUNTRY
    assert parse_phone("+44 7911 123456", default_region="XX").e164 == "+447911123456"


# --- names -----------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Julia Smith", "Julia Smith"),
        ("  Julia \t  Smith  ", "Julia Smith"),
        ("Zoë O’Brien", "Zoë O’Brien"),
        ("José García", "José García"),
        ("Ze\u0301phyr", "Zéphyr"),  # NFC
        ("3M", "3M"),
        ("Example County Council", "Example County Council"),
    ],
)
def test_names_tidied(text: str, expected: str) -> None:
    assert check_name(text, field="recipient_name", label="recipient's name") == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", msg.NAME_MISSING.format(label="recipient's name")),
        ("   ", msg.NAME_MISSING.format(label="recipient's name")),
        ("x" * 201, msg.NAME_TOO_LONG.format(label="recipient's name", max_len=200)),
        ("x" * 10_000_000, msg.NAME_TOO_LONG.format(label="recipient's name", max_len=200)),
        ("Julia\nSmith", msg.NAME_BAD_CHARACTERS.format(label="recipient's name")),
        ("Julia\x00Smith", msg.NAME_BAD_CHARACTERS.format(label="recipient's name")),
        ("Julia\u202eSmith", msg.NAME_BAD_CHARACTERS.format(label="recipient's name")),
        ("---", msg.NAME_NO_LETTERS.format(label="recipient's name")),
    ],
)
def test_bad_names_refused(text: str, message: str) -> None:
    with pytest.raises(RecipientError) as err:
        check_name(text, field="recipient_name", label="recipient's name")
    assert err.value.field == "recipient_name"
    assert err.value.message == message


def test_name_length_limit_is_configurable() -> None:
    assert check_name("abcde", field="f", label="team", max_len=5) == "abcde"
    with pytest.raises(RecipientError):
        check_name("abcdef", field="f", label="team", max_len=5)


# --- property: junk never escapes as anything but RecipientError ------------------------

def _junk(rng: random.Random) -> str:
    pick = rng.random()
    if pick < 0.3:
        alphabet = "aZ09@.+-_ ()x\n\t\x00é漢\u202e\U0001f600/\\:'’ext+44"
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
    if pick < 0.6:
        return "".join(chr(rng.randint(0, 0x10FFFF)) for _ in range(rng.randint(0, 30)))
    if pick < 0.7:
        return rng.choice(["", " ", "a" * 100_000, "@" * 1000, "+" * 500, "1" * 5000, "\ud800"])
    return rng.randbytes(rng.randint(0, 60)).decode("latin-1")


def test_random_input_only_raises_recipient_error() -> None:
    rng = random.Random(20240501)
    for _ in range(1500):
        text = _junk(rng)
        protected = rng.random() < 0.5
        region = rng.choice(["GB", "US", "XX", ""])
        calls: tuple[Callable[[], object], ...] = (
            partial(email, text, protected=protected),
            partial(parse_phone, text, default_region=region),
            partial(check_name, text, field="name", label="name"),
        )
        for call in calls:
            try:
                result = call()
            except RecipientError as err:
                assert err.message
                assert err.field in ("email", "phone", "name")
            else:
                assert result is not None
