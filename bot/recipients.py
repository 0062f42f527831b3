"""Check the recipient details a sender types: email address, phone number and names.

The seed policies forbid sending protected information to personal webmail accounts
("xyz@hotmail.com") or generic addresses ("info@"), because nobody can say who reads them.
Every problem is raised as :class:`RecipientError`, whose message tells the sender what is
wrong and what to enter instead, so the chat can simply ask again. Nothing here touches the
network: email syntax is checked without DNS, phone numbers with the offline metadata of
``phonenumbers``.
"""

from __future__ import annotations

import copy
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from bot.cleantext import one_line
from bot.messages import validation as msg

DEFAULT_WEBMAIL_DOMAINS: tuple[str, ...] = (
    "gmail.com", "googlemail.com",
    "hotmail.com", "hotmail.co.uk", "hotmail.fr", "outlook.com", "live.com", "live.co.uk",
    "msn.com", "windowslive.com",
    "yahoo.com", "yahoo.co.uk", "ymail.com", "rocketmail.com",
    "icloud.com", "me.com", "mac.com",
    "aol.com", "aol.co.uk", "aim.com",
    "protonmail.com", "protonmail.ch", "proton.me", "pm.me",
    "gmx.com", "gmx.co.uk", "gmx.net", "mail.com", "zoho.com", "yandex.com",
    "tutanota.com", "tuta.io", "fastmail.com", "hushmail.com",
    "btinternet.com", "btopenworld.com", "sky.com", "talktalk.net", "virginmedia.com",
    "blueyonder.co.uk", "ntlworld.com", "tiscali.co.uk",
)
"""Personal email services; refused for anything above public (seed: "Gmail, yahoo or Hotmail")."""

DEFAULT_GENERIC_MAILBOXES: tuple[str, ...] = (
    "info", "information", "admin", "administrator", "enquiries", "enquiry", "inquiries",
    "inquiry", "office", "contact", "contactus", "contact-us", "reception", "hello", "mail",
    "email", "post", "team", "general", "support", "help", "helpdesk", "sales", "all", "staff",
    "noreply", "no-reply", "donotreply", "do-not-reply", "webmaster", "postmaster",
    "hostmaster", "abuse", "feedback", "press", "media", "marketing", "newsletter",
)
"""Local parts nobody in particular reads (seed: "generic email addresses such as info@")."""

DISTRIBUTION_LIST_PREFIXES: tuple[str, ...] = (
    "all-", "all.", "all_", "allstaff", "everyone", "staff-list", "dl-", "dl.", "dl_", "group-",
)
"""Local-part prefixes of obvious distribution lists; pass a longer tuple to extend it."""

_MAX_EMAIL_CHARS = 320  # 64 local + @ + 255 domain: anything longer cannot be an address
_MAX_PHONE_CHARS = 64
_LINE_BREAKS = frozenset("\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029")
# Invisible characters that change how text is displayed (used to disguise text).
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
                           "\u2066\u2067\u2068\u2069")


class RecipientRefusal(StrEnum):
    """Why a typed address or number was refused, for the near-miss record (a missing
    detail is no near miss: nothing was tried)."""

    WEBMAIL = "webmail"
    GENERIC_MAILBOX = "generic mailbox"
    DISTRIBUTION_LIST = "distribution list"
    INTERNATIONAL_DOMAIN = "non-ASCII domain"
    INVALID_EMAIL = "invalid email address"
    INVALID_PHONE = "invalid phone number"


class RecipientError(ValueError):
    """A recipient detail that cannot be accepted; `field` names the form field, `message` says why and what to do, `refusal` the kind of refusal (None: missing)."""  # noqa: E501

    def __init__(self, field: str, message: str,
                 refusal: RecipientRefusal | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.refusal = refusal


_INVALID_EMAIL = RecipientRefusal.INVALID_EMAIL
_INVALID_PHONE = RecipientRefusal.INVALID_PHONE


@dataclass(frozen=True)
class EmailAddress:
    """A checked email address. ``ascii_domain`` is its domain as the validator resolved it
    (IDNA 2008, punycode, lower case), the form sharing agreements are matched against: kept
    from validation, never recomputed with another codec (Python's IDNA 2003 codec reads
    ``mißion.org`` as ``mission.org``; mail systems deliver to ``xn--miion-hra.org``)."""

    address: str
    ascii_domain: str


@dataclass(frozen=True)
class PhoneNumber:
    """A checked phone number.

    ``is_mobile`` is true for MOBILE numbers and also for FIXED_LINE_OR_MOBILE, the type
    ``phonenumbers`` gives only where the numbering plan cannot tell the two apart (the US,
    Canada, ...): refusing those would make SMS impossible for whole countries, and an SMS to
    a landline simply fails at the provider. PAGER, VOIP and UK 070 "personal numbers" are
    not counted as mobile.
    """

    e164: str
    extension: str | None
    is_mobile: bool
    display: str


def _has_bad_characters(text: str) -> bool:
    """Line breaks, control and invisible formatting characters have no place in a detail."""
    for ch in text:
        if ch in _LINE_BREAKS or ch in _BIDI_CONTROLS:
            return True
        if unicodedata.category(ch) in ("Cc", "Cs", "Co") and ch != "\t":
            return True
    return False


def _clean_domains(domains: Collection[str]) -> tuple[str, ...]:
    """Policy lists may carry "@gmail.com" or upper case; compare on bare lower-case names."""
    cleaned = (d.strip().lower().lstrip("@").strip(".") for d in domains if isinstance(d, str))
    return tuple(d for d in cleaned if d)


def _domain_matches(domain: str, listed: tuple[str, ...]) -> str | None:
    """The listed domain that `domain` equals or is a subdomain of, if any."""
    for entry in listed:
        if domain == entry or domain.endswith("." + entry):
            return entry
    return None


def check_email(
    address: str,
    *,
    protected: bool,
    webmail_domains: Collection[str],
    generic_mailboxes: Collection[str],
    distribution_prefixes: Collection[str] = DISTRIBUTION_LIST_PREFIXES,
) -> EmailAddress:
    """Return the normalised address and its ASCII domain, or raise :class:`RecipientError`
    on field "email".

    Syntax is always checked (no DNS lookups, so no network). When ``protected`` (the
    classification is above public) the address must also reach one named person at work:
    a domain written with non-ASCII letters (which can imitate another: ``nһs.uk`` with a
    Cyrillic ``һ``), personal webmail, generic mailboxes (exact local part after removing
    any "+tag") and obvious distribution lists are refused.
    """
    text = address.strip() if isinstance(address, str) else ""
    if not text:
        raise RecipientError("email", msg.EMAIL_MISSING)
    if len(text) > _MAX_EMAIL_CHARS:
        raise RecipientError("email", msg.EMAIL_TOO_LONG, _INVALID_EMAIL)
    if one_line(text) != text:  # hidden or blank characters (the library lets fillers by)
        raise RecipientError("email", msg.EMAIL_SYNTAX.format(
            explanation=msg.EMAIL_SYNTAX_CHARACTERS), _INVALID_EMAIL)
    try:
        result = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        explanation = str(exc).strip() or msg.EMAIL_SYNTAX_UNKNOWN
        if not explanation.endswith((".", "?", "!")):
            explanation += "."
        raise RecipientError("email", msg.EMAIL_SYNTAX.format(explanation=explanation),
                             _INVALID_EMAIL) from None
    except (ValueError, UnicodeError):  # defensive: odd unicode the library did not expect
        explanation = msg.EMAIL_SYNTAX_CHARACTERS
        raise RecipientError("email", msg.EMAIL_SYNTAX.format(explanation=explanation),
                             _INVALID_EMAIL) from None
    normalized: str = result.normalized
    domain = result.domain.lower()
    ascii_domain = (result.ascii_domain or domain).lower()
    checked = EmailAddress(normalized, ascii_domain)
    if not protected:
        return checked

    if not domain.isascii():
        raise RecipientError("email", msg.EMAIL_INTERNATIONAL_DOMAIN.format(
            domain=domain, ascii_domain=ascii_domain), RecipientRefusal.INTERNATIONAL_DOMAIN)
    webmail = _clean_domains(webmail_domains)
    hit = _domain_matches(domain, webmail) or _domain_matches(ascii_domain, webmail)
    if hit is not None:
        raise RecipientError("email", msg.EMAIL_WEBMAIL.format(domain=domain),
                             RecipientRefusal.WEBMAIL)

    local = result.local_part.casefold().split("+", 1)[0]
    generic = {g.strip().casefold().rstrip("@") for g in generic_mailboxes if isinstance(g, str)}
    if local and local in generic:
        raise RecipientError(
            "email", msg.EMAIL_GENERIC_MAILBOX.format(address=normalized, local=local),
            RecipientRefusal.GENERIC_MAILBOX)
    prefixes = tuple(p.strip().casefold() for p in distribution_prefixes if isinstance(p, str))
    if local and any(p and local.startswith(p) for p in prefixes):
        raise RecipientError("email", msg.EMAIL_DISTRIBUTION_LIST.format(address=normalized),
                             RecipientRefusal.DISTRIBUTION_LIST)
    return checked


def _format(number: phonenumbers.PhoneNumber, fmt: int) -> str:
    return str(phonenumbers.format_number(number, fmt))


def _examples(region: str) -> tuple[str, str]:
    """A landline and a mobile example in the region's own national format, for messages."""
    landline, mobile = msg.PHONE_FALLBACK_EXAMPLE, msg.PHONE_FALLBACK_MOBILE_EXAMPLE
    try:
        types = phonenumbers.PhoneNumberType
        fixed = phonenumbers.example_number_for_type(region, types.FIXED_LINE)
        mob = phonenumbers.example_number_for_type(region, types.MOBILE)
    except Exception:  # unknown or odd region code: keep the fallbacks
        return landline, mobile
    if fixed is not None:
        landline = _format(fixed, phonenumbers.PhoneNumberFormat.NATIONAL)
    if mob is not None:
        mobile = _format(mob, phonenumbers.PhoneNumberFormat.NATIONAL)
    return landline, mobile


def parse_phone(text: str, *, default_region: str) -> PhoneNumber:
    """Parse and validate a phone number; raise :class:`RecipientError` on field "phone".

    National numbers are read in ``default_region`` (e.g. "GB"); extensions written as
    "ext 123", "ext. 123" or "x123" are kept. Only numbers the offline metadata says are
    valid are accepted, because a password sent to a wrong number is a data breach.
    """
    region = default_region.strip().upper() if isinstance(default_region, str) else ""
    example, mobile_example = _examples(region)
    raw = text.strip() if isinstance(text, str) else ""
    if not raw:
        raise RecipientError("phone", msg.PHONE_MISSING.format(example=example))
    if len(raw) > _MAX_PHONE_CHARS:
        raise RecipientError("phone", msg.PHONE_TOO_LONG.format(example=example), _INVALID_PHONE)
    if _has_bad_characters(raw):
        raise RecipientError("phone", msg.PHONE_BAD_CHARACTERS.format(example=example),
                             _INVALID_PHONE)
    if mobile_example == example:
        invalid = msg.PHONE_INVALID_ONE_EXAMPLE.format(example=example)
    else:
        invalid = msg.PHONE_INVALID.format(example=example, mobile=mobile_example)
    try:
        number = phonenumbers.parse(raw, region or None)
    except phonenumbers.NumberParseException as exc:
        if exc.error_type == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE:
            raise RecipientError("phone", msg.PHONE_UNKNOWN_COUNTRY, _INVALID_PHONE) from None
        raise RecipientError("phone", invalid, _INVALID_PHONE) from None
    except Exception:  # defensive: the parser must never crash the conversation
        raise RecipientError("phone", invalid, _INVALID_PHONE) from None
    if not phonenumbers.is_valid_number(number):
        raise RecipientError("phone", invalid, _INVALID_PHONE)

    number_type = phonenumbers.number_type(number)
    is_mobile = number_type in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    )
    extension = number.extension or None
    bare = copy.copy(number)
    bare.extension = None
    display = _format(bare, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    if extension:
        display = msg.PHONE_EXTENSION_DISPLAY.format(number=display, extension=extension)
    return PhoneNumber(
        e164=_format(bare, phonenumbers.PhoneNumberFormat.E164),
        extension=extension,
        is_mobile=is_mobile,
        display=display,
    )


def is_landline(e164: str) -> bool:
    """Whether a checked number (E.164) is a fixed line (FIXED_LINE_OR_MOBILE is not)."""
    try:
        number = phonenumbers.parse(e164, None)
    except Exception:  # defensive: stored state is ours, but never crash on it
        return False
    return phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.FIXED_LINE


def check_name(text: str, *, field: str, label: str, max_len: int = 200) -> str:
    """Return a required free-text detail (a person's or organisation's name), tidied.

    Surrounding space is removed and runs of spaces or tabs become one space. Line breaks,
    control characters and invisible direction overrides are refused: they can hide what a
    name really says in emails, the approver's request and the audit record. Other
    characters that show nothing (zero-width spaces, soft hyphens, fillers) are dropped
    (:func:`bot.cleantext.one_line`).
    """
    raw = text if isinstance(text, str) else ""
    if len(raw) > max(max_len, 0) * 4 + 1000:  # no need to normalise megabytes to refuse them
        raise RecipientError(field, msg.NAME_TOO_LONG.format(label=label, max_len=max_len))
    value = unicodedata.normalize("NFC", raw).strip()
    if not value:
        raise RecipientError(field, msg.NAME_MISSING.format(label=label))
    if _has_bad_characters(value):
        raise RecipientError(field, msg.NAME_BAD_CHARACTERS.format(label=label))
    value = one_line(value)
    if len(value) > max_len:
        raise RecipientError(field, msg.NAME_TOO_LONG.format(label=label, max_len=max_len))
    if not any(ch.isalnum() for ch in value):
        raise RecipientError(field, msg.NAME_NO_LETTERS.format(label=label))
    return value
