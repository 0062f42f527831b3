"""The organisation's sharing policy, read from a TOML file and validated at start-up.

The policy is where information governance states its rules: the classification scheme
and, per level, whether encryption and approval are required, which delivery and password
methods are allowed, size limits, link expiry, recipient rules and approvers. The shipped
default (``bot/policies/default.toml``) is built from the seed policies; point
``SAFEHAVEN_POLICY`` at an organisation's own file to replace it.

An invalid policy raises :class:`PolicyError` whose message names the key and what is wrong,
so ``safehaven serve`` refuses to start rather than run with a rule silently ignored. Every
user id is checked here (a ``teams:`` id must be a Microsoft Entra object id) and kept in
its canonical spelling; an id listed under two people stops start-up. What the rules are,
and the questions the code asks them, are in :mod:`bot.policy_rules`.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, time
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.agreements import WILDCARD, SharingAgreement
from bot.policy_rules import (
    DEFAULT_LINK_STATEMENT,
    ENTRA_ID_RE,
    TEAMS_PREFIX,
    ArchiveRetention,
    CallWindow,
    DeliveryRules,
    Governance,
    InformationCategory,
    Level,
    Policy,
    RetentionPeriods,
    canonical_user_id,
)
from bot.statuses import DeliveryMethod, PasswordMethod

DELIVERY_METHODS = tuple(DeliveryMethod)
PASSWORD_METHODS = tuple(PasswordMethod)
APPROVAL_RULES = ("always", "never", "without-agreement")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MB = 1024 * 1024
# Larger numbers are never meant and overflow dates and times later (timedelta).
MAX_NUMBER = 1_000_000
MAX_RETENTION_DAYS = 3650  # an archive kept longer is not a retention
MAX_INCIDENT_DAYS = 36525  # a hundred years: more than any records schedule asks
# [retention] keys of bot.policy_rules.RetentionPeriods, named as its fields.
RETENTION_PERIOD_KEYS = ("conversation_days", "recipient_days", "incident_days",
                         "audit_days")
# An agreement's domain: two or more LDH labels (punycode for international names).
_DOMAIN_RE = re.compile(r"(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+"
                        r"([a-z]{2,63}|xn--[a-z0-9-]{1,59})")
# Suffixes under which anyone in a sector registers a domain: "*.gov.uk" would be every
# council, not one agreement's organisation (the old flat list treated gov.uk so).
SHARED_SUFFIXES = frozenset({"gov.uk", "sch.uk", "nhs.uk", "police.uk", "ac.uk", "co.uk",
                             "org.uk", "me.uk", "ltd.uk", "plc.uk", "net.uk"})
SHARING_AGREEMENTS_MOVED = (
    "the flat list of domains is replaced by the register of information-sharing agreements. "
    "Remove it and write one [[agreement]] table per agreement: name, organisation, domains "
    "(exact: \"nhs.net\" covers x@nhs.net only; add \"*.nhs.net\" for its subdomains, which "
    "the old list covered), classifications, information_categories, review_by (a date, "
    "e.g. 2027-03-31), and optionally reference and owner. See \"Sharing agreements\" in "
    "docs/governance.md")
# A channel-qualified user id (console:NAME, slack:U0123ABCD, teams:<Entra object id>).
_USER_ID_RE = re.compile(r"[a-z][a-z0-9-]*:\S+")
# A person's name in [people]: no colon, so it can never be mistaken for an id.
_PERSON_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
# An information category's key, as the record and agreements name it.
_CATEGORY_KEY_RE = re.compile(r"[a-z][a-z0-9-]{0,39}")
CATEGORY_LABEL_MAX = 75  # a Slack checkbox or Teams choice shows this much

T = TypeVar("T")


class PolicyError(ValueError):
    """The policy file cannot be used; the message names the key and the problem (the
    first problem found). ``errors`` holds every problem found, each naming its key, in the
    order the file is read (``safehaven policy check`` prints them all)."""

    def __init__(self, message: str, *, errors: Sequence[PolicyError] = ()) -> None:
        super().__init__(message)
        self.errors: tuple[PolicyError, ...] = tuple(errors) or (self,)


class _Reader:
    """Typed access to a TOML table that reports the dotted key on any error.

    Readers of one document share ``found``: a check that fails is recorded there by
    :meth:`attempt` and reading goes on with the next key, so one pass finds every error
    (:func:`parse_policy` raises them together). A table that is missing or not a table is
    one error; what would be read inside it is not reported again (its reader records into
    a list of its own, which nobody reads)."""

    def __init__(self, table: Mapping[str, Any], path: str,
                 found: list[PolicyError] | None = None) -> None:
        self.table = table
        self.path = path
        self.found: list[PolicyError] = [] if found is None else found

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def fail(self, name: str, problem: str) -> PolicyError:
        return PolicyError(f"policy key `{self.key(name)}`: {problem}")

    def attempt(self, read: Callable[..., T], fallback: Any, *args: Any) -> T:
        """``read(*args)``, or ``fallback`` when it raises a :class:`PolicyError` (recorded;
        the fallback only lets reading go on: a policy with errors is never built)."""
        try:
            return read(*args)
        except PolicyError as exc:
            self.found.extend(exc.errors)
            return cast(T, fallback)

    def mark(self) -> int:
        """How many errors are recorded so far (compare with :meth:`clean_since`)."""
        return len(self.found)

    def clean_since(self, mark: int) -> bool:
        return len(self.found) == mark

    def sub(self, name: str, *, required: bool = True) -> _Reader:
        value = self.table.get(name)
        if value is None and not required:
            return _Reader({}, self.key(name), self.found)
        if not isinstance(value, dict):
            self.found.append(self.fail(name, "missing or not a table"))
            return _Reader({}, self.key(name))  # its errors would only repeat this one
        return _Reader(value, self.key(name), self.found)

    def get(self, name: str, kind: type, default: Any = ...) -> Any:
        if name not in self.table:
            if default is ...:
                raise self.fail(name, "is required but missing")
            return default
        value = self.table[name]
        if kind is int and isinstance(value, bool):
            raise self.fail(name, f"must be a whole number, not {value!r}")
        if not isinstance(value, kind):
            raise self.fail(name, f"must be a {kind.__name__}, not {value!r}")
        return value

    def text(self, name: str, default: Any = ...) -> str:
        value = self.get(name, str, default)
        if isinstance(value, str) and not value.strip():
            raise self.fail(name, "must not be empty")
        return str(value)

    def positive(self, name: str, default: Any = ...) -> int:
        value = int(self.get(name, int, default))
        if value <= 0:
            raise self.fail(name, f"must be greater than 0, not {value}")
        if value > MAX_NUMBER:
            raise self.fail(name, f"must be at most {MAX_NUMBER:,}, not {value}")
        return value

    def strings(self, name: str, default: Any = ..., *, allowed: tuple[str, ...] = ()) -> tuple[
        str, ...
    ]:
        value = self.get(name, list, default)
        out: list[str] = []
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                raise self.fail(name, f"item {i + 1} must be a non-empty string, not {item!r}")
            if allowed and item not in allowed:
                raise self.fail(
                    name, f"{item!r} is not one of: {', '.join(allowed)}"
                )
            out.append(item.strip())
        return tuple(out)

    def unknown_keys(self, known: set[str]) -> None:
        """Record each key not in ``known`` (a misspelt key is never silently ignored)."""
        for extra in sorted(set(self.table) - known):
            self.found.append(PolicyError(
                f"policy key `{self.key(extra)}`: unknown key (known keys: "
                f"{', '.join(sorted(known))})"
            ))


def _parse_time(reader: _Reader, name: str) -> time:
    text = reader.text(name)
    if not re.fullmatch(r"\d{2}:\d{2}", text):
        raise reader.fail(name, f"must be a time like \"09:00\", not {text!r}")
    try:
        return time.fromisoformat(text)
    except ValueError as exc:
        raise reader.fail(name, f"{text!r} is not a valid time") from exc


LEVEL_KEYS = frozenset({
    "name", "description", "encryption_required", "recipient_checks", "approval",
    "delivery_methods", "default_delivery", "password_methods", "max_total_mb",
    "email_limit_mb", "link_expiry_hours", "download_limit", "special_category_approval",
})


def _level_name(reader: _Reader) -> str:
    name = reader.text("name")
    if not re.fullmatch(r"[A-Z][A-Z0-9 _-]{0,39}", name):
        raise reader.fail("name", f"{name!r} must be capital letters (e.g. RESTRICTED)")
    return name


def _level_delivery(reader: _Reader) -> tuple[DeliveryMethod, ...]:
    delivery = tuple(DeliveryMethod(m) for m in reader.strings("delivery_methods",
                                                              allowed=DELIVERY_METHODS))
    if not delivery:
        raise reader.fail("delivery_methods", "must list at least one method")
    return delivery


def _level_default_delivery(reader: _Reader, delivery: tuple[DeliveryMethod, ...]
                            ) -> DeliveryMethod:
    default_delivery = reader.text("default_delivery", delivery[0])
    if default_delivery not in delivery:
        raise reader.fail("default_delivery", f"{default_delivery!r} is not in delivery_methods")
    return DeliveryMethod(default_delivery)


def _level_passwords(reader: _Reader) -> tuple[PasswordMethod, ...]:
    passwords = tuple(PasswordMethod(m) for m in reader.strings("password_methods",
                                                               allowed=PASSWORD_METHODS))
    if not passwords:
        raise reader.fail("password_methods", "must list at least one method")
    return passwords


def _level_approval(reader: _Reader) -> str:
    approval = reader.text("approval", "never")
    if approval not in APPROVAL_RULES:
        raise reader.fail("approval", f"{approval!r} is not one of: {', '.join(APPROVAL_RULES)}")
    return approval


def _read_level(reader: _Reader) -> Level | None:
    """One ``[[classification]]`` table; None when any of its keys is wrong (recorded)."""
    mark = reader.mark()
    reader.unknown_keys(set(LEVEL_KEYS))
    name = reader.attempt(lambda: _level_name(reader), "")
    delivery = reader.attempt(lambda: _level_delivery(reader), ())
    default_delivery = (reader.attempt(lambda: _level_default_delivery(reader, delivery), None)
                        if delivery else None)
    passwords = reader.attempt(lambda: _level_passwords(reader), ())
    approval = reader.attempt(lambda: _level_approval(reader), "never")
    encryption = reader.attempt(lambda: bool(reader.get("encryption_required", bool)), False)
    description = reader.attempt(lambda: reader.text("description"), "")
    recipient_checks = reader.attempt(
        lambda: bool(reader.get("recipient_checks", bool, encryption)), encryption)
    max_total = reader.attempt(lambda: reader.positive("max_total_mb"), 0)
    email_limit = reader.attempt(lambda: reader.positive("email_limit_mb"), 0)
    expiry = reader.attempt(lambda: reader.positive("link_expiry_hours", 72), 0)
    downloads = reader.attempt(lambda: reader.positive("download_limit", 3), 0)
    special = reader.attempt(
        lambda: bool(reader.get("special_category_approval", bool, False)), False)
    if not reader.clean_since(mark) or default_delivery is None:
        return None
    return Level(
        name=name,
        description=description,
        encryption_required=encryption,
        recipient_checks=recipient_checks,
        approval=approval,
        delivery_methods=delivery,
        default_delivery=default_delivery,
        password_methods=passwords,
        max_total_bytes=max_total * MB,
        email_limit_bytes=email_limit * MB,
        link_expiry_hours=expiry,
        download_limit=downloads,
        special_category_approval=special,
    )


def _table_readers(root: _Reader, key: str, noun: str, *,
                   required: bool = False) -> list[_Reader]:
    """A reader for each table of the ``[[key]]`` array (``noun`` names its entries in
    the error); none when it is absent and not ``required``. An entry that is not a table
    is recorded and skipped."""
    raw = root.table.get(key, None if required else [])
    if not isinstance(raw, list) or (required and not raw):
        root.found.append(PolicyError(
            f"policy key `{key}`: must be a list of {noun} ([[{key}]] tables)"))
        return []
    readers = []
    for i, table in enumerate(raw):
        if not isinstance(table, dict):
            root.found.append(PolicyError(f"policy key `{key}[{i}]`: must be a table"))
            continue
        readers.append(_Reader(table, f"{key}[{i}]", root.found))
    return readers


def _listed_names(document: Mapping[str, Any], key: str, field: str) -> tuple[str, ...]:
    """The ``field`` of every table of the ``[[key]]`` array as written (strings only): what
    other tables may name, whether or not the table it is in has errors of its own (so one
    error is not reported again by everything that names it)."""
    raw = document.get(key)
    tables = raw if isinstance(raw, list) else []
    return tuple(t[field].strip() for t in tables
                 if isinstance(t, dict) and isinstance(t.get(field), str) and t[field].strip())


CATEGORY_KEYS = frozenset({"key", "label", "special"})


def _category_key(reader: _Reader, out: Sequence[InformationCategory]) -> str:
    key = reader.text("key")
    if not _CATEGORY_KEY_RE.fullmatch(key):
        raise reader.fail("key", f"{key!r} must be lower-case letters, digits and '-', "
                          "starting with a letter (e.g. health, criminal-offence)")
    if any(c.key == key for c in out):
        raise reader.fail("key", f"{key!r} appears twice")
    return key


def _category_label(reader: _Reader, out: Sequence[InformationCategory]) -> str:
    label = reader.text("label").strip()
    if "," in label or len(label) > CATEGORY_LABEL_MAX:
        raise reader.fail("label", f"{label!r} must have no comma and at most "
                          f"{CATEGORY_LABEL_MAX} characters")
    if any(c.label.lower() == label.lower() for c in out):
        raise reader.fail("label", f"{label!r} appears twice")
    return label


def _read_information_categories(root: _Reader) -> tuple[InformationCategory, ...]:
    """``[[information_category]]`` tables (key, label, special): optional; none listed and
    the conversation does not ask what kind of information a share carries. A label has
    no comma, because a typed answer lists several separated by commas."""
    out: list[InformationCategory] = []
    for reader in _table_readers(root, "information_category", "categories"):
        mark = reader.mark()
        reader.unknown_keys(set(CATEGORY_KEYS))
        key = reader.attempt(_category_key, "", reader, out)
        label = reader.attempt(_category_label, "", reader, out)
        special = reader.attempt(reader.get, False, "special", bool)
        if reader.clean_since(mark):
            out.append(InformationCategory(key=key, label=label, special=special))
    return tuple(out)


def _read_agreement_domain(reader: _Reader, item: str) -> str:
    """One entry of an agreement's ``domains``: an email domain (``nhs.net``, that domain
    exactly) or ``*.`` and a domain (``*.nhs.net``, its subdomains). Anything else (an
    organisation's name, ``@nhs.net``, a URL) is refused rather than silently never matching,
    or matching typed text; so is a wildcard over a suffix shared by many organisations."""
    entry = item.strip().lower().rstrip(".")
    domain = entry[len(WILDCARD):] if entry.startswith(WILDCARD) else entry
    if not _DOMAIN_RE.fullmatch(domain):
        raise reader.fail(
            "domains", f"{item!r} is not an email domain: list domains like \"nhs.net\" "
            "(that domain only) or \"*.nhs.net\" (its subdomains, such as trust.nhs.net); "
            "an agreement matches the recipient's email address, never an organisation name")
    if entry.startswith(WILDCARD) and domain in SHARED_SUFFIXES:
        raise reader.fail(
            "domains", f"{item!r} would cover every organisation under {domain}, and an "
            "agreement is with one organisation: list its own domains (e.g. "
            f"\"derbyshire.{domain}\")")
    return entry


AGREEMENT_KEYS = frozenset({"name", "organisation", "domains", "classifications",
                            "information_categories", "review_by", "reference", "owner"})


def _agreement_domains(reader: _Reader, webmail: tuple[str, ...]) -> tuple[str, ...]:
    domains = tuple(dict.fromkeys(_read_agreement_domain(reader, item)
                                  for item in reader.strings("domains")))
    if not domains:
        raise reader.fail("domains", "must list at least one email domain")
    for entry in domains:
        if entry in webmail:
            raise reader.fail("domains", f"{entry!r} is a webmail domain "
                              "(recipients.webmail_domains): anyone can have an address there")
    return domains


def _agreement_classifications(reader: _Reader, levels: tuple[str, ...]) -> tuple[str, ...]:
    classifications = reader.strings("classifications", allowed=levels)
    if not classifications:
        raise reader.fail("classifications", "must list at least one classification level")
    return classifications


def _agreement_categories(reader: _Reader, categories: tuple[str, ...]) -> tuple[str, ...]:
    if categories:
        allowed = reader.strings("information_categories", allowed=categories)
        if not allowed:
            raise reader.fail("information_categories", "must list at least one of the "
                              f"policy's information categories: {', '.join(categories)}")
    else:
        allowed = reader.strings("information_categories", ())
        if allowed:
            raise reader.fail("information_categories", "the policy lists no information "
                              "categories ([[information_category]]), so none can be named")
    return allowed


def _agreement_review_by(reader: _Reader) -> date:
    review_by = reader.table.get("review_by")
    if review_by is None:
        raise reader.fail("review_by", "is required but missing: the date by which the "
                          "agreement must be reviewed, e.g. review_by = 2027-03-31")
    if not isinstance(review_by, date) or isinstance(review_by, datetime):
        raise reader.fail("review_by", f"must be a TOML date without quotes, e.g. "
                          f"review_by = 2027-03-31, not {review_by!r}")
    return review_by


def _read_agreement(reader: _Reader, *, levels: tuple[str, ...], categories: tuple[str, ...],
                    webmail: tuple[str, ...]) -> SharingAgreement | None:
    """One ``[[agreement]]`` table; None when any of its keys is wrong (recorded)."""
    mark = reader.mark()
    reader.unknown_keys(set(AGREEMENT_KEYS))
    domains = reader.attempt(lambda: _agreement_domains(reader, webmail), ())
    classifications = reader.attempt(lambda: _agreement_classifications(reader, levels), ())
    allowed = reader.attempt(lambda: _agreement_categories(reader, categories), ())
    review_by = reader.attempt(lambda: _agreement_review_by(reader), date.min)
    name = reader.attempt(lambda: reader.text("name").strip(), "")
    organisation = reader.attempt(lambda: reader.text("organisation").strip(), "")
    reference = reader.attempt(
        lambda: reader.text("reference").strip() if "reference" in reader.table else None, None)
    owner = reader.attempt(
        lambda: reader.text("owner").strip() if "owner" in reader.table else None, None)
    if not reader.clean_since(mark):
        return None
    return SharingAgreement(
        name=name, organisation=organisation,
        domains=domains, classifications=classifications, information_categories=allowed,
        review_by=review_by, reference=reference, owner=owner)


def _read_register(root: _Reader, *, levels: tuple[str, ...],
                   categories: tuple[str, ...], webmail: tuple[str, ...]
                   ) -> tuple[SharingAgreement, ...]:
    """The ``[[agreement]]`` tables: the register of information-sharing agreements
    (:mod:`bot.agreements`). Optional: without one, every share under a
    ``without-agreement`` level needs an approver."""
    out: list[SharingAgreement] = []
    for reader in _table_readers(root, "agreement", "agreements"):
        agreement = _read_agreement(reader, levels=levels, categories=categories,
                                    webmail=webmail)
        if agreement is None:
            continue
        if any(a.name.lower() == agreement.name.lower() for a in out):
            reader.found.append(reader.fail("name", f"{agreement.name!r} appears twice"))
        elif agreement.reference and any(a.reference == agreement.reference for a in out):
            reader.found.append(reader.fail("reference",
                                            f"{agreement.reference!r} appears twice"))
        else:
            out.append(agreement)
    return tuple(out)


def _check_user_id(reader: _Reader, name: str, user_id: str) -> str:
    """``user_id`` checked, in its canonical spelling (:func:`canonical_user_id`)."""
    if not _USER_ID_RE.fullmatch(user_id):
        raise reader.fail(name, f"{user_id!r} is not a channel-qualified user id "
                          "(console:NAME, slack:U0123ABCD, teams:<Entra object id>)")
    if user_id.startswith(TEAMS_PREFIX) and not ENTRA_ID_RE.fullmatch(
            user_id[len(TEAMS_PREFIX):]):
        raise reader.fail(name, f"{user_id!r} is not a Teams user id: after 'teams:' comes "
                          "the person's Microsoft Entra object id, "
                          "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (Entra ID > Users > Object ID)")
    return canonical_user_id(user_id)


def _read_person(reader: _Reader, person: str, owner: dict[str, str]) -> tuple[str, ...]:
    if not _PERSON_RE.fullmatch(person):
        raise reader.fail(person, "a person's name is letters, digits, '.', '_' and '-' "
                          "(e.g. jane-manager), with no ':'")
    ids = reader.strings(person)
    if not ids:
        raise reader.fail(person, "must list at least one user id")
    ids = tuple(_check_user_id(reader, person, user_id) for user_id in ids)
    for user_id in ids:
        if user_id in owner and owner[user_id] != person:
            raise reader.fail(person, f"{user_id!r} is already listed for "
                              f"{owner[user_id]!r}: an id belongs to one person")
    for user_id in ids:
        owner[user_id] = person
    return tuple(dict.fromkeys(ids))


def _read_people(reader: _Reader) -> dict[str, tuple[str, ...]]:
    """``person = [ids]``: each id belongs to at most one person."""
    people: dict[str, tuple[str, ...]] = {}
    owner: dict[str, str] = {}
    for person in reader.table:
        ids = reader.attempt(_read_person, None, reader, person, owner)
        if ids is not None:
            people[person] = ids
    return people


def _read_approver_entry(reader: _Reader, sender: str, people: Mapping[str, tuple[str, ...]],
                         approvers: Mapping[str, tuple[str, ...]]) -> tuple[str, tuple[str, ...]]:
    key = sender
    if sender != "*" and sender not in people:
        key = _check_user_id(reader, sender, sender)
    listed: list[str] = []
    for entry in reader.strings(sender):
        if entry not in people and not _USER_ID_RE.fullmatch(entry):
            raise reader.fail(sender, f"{entry!r} is neither a person listed in [people] "
                              "nor a channel-qualified user id (console:NAME, "
                              "slack:U0123ABCD, teams:<Entra object id>)")
        listed.append(entry if entry in people else _check_user_id(reader, sender, entry))
    if key in approvers:
        raise reader.fail(sender, f"{key!r} is listed twice (ids are compared in one "
                          "spelling: a Teams id in lower case)")
    return key, tuple(listed)


def _read_approvers(reader: _Reader, people: Mapping[str, tuple[str, ...]]
                    ) -> dict[str, tuple[str, ...]]:
    """``sender = [approvers]``: the sender is ``"*"``, an id or a person; each approver an
    id or a person from ``[people]``."""
    approvers: dict[str, tuple[str, ...]] = {}
    for sender in reader.table:
        read = reader.attempt(_read_approver_entry, None, reader, sender, people,
                              approvers)
        if read is not None:
            approvers[read[0]] = read[1]
    return approvers


def _read_retention(reader: _Reader) -> ArchiveRetention:
    """``[retention]``: optional; a policy without it keeps the defaults."""
    reader.unknown_keys({"archive_days_after_password", "archive_max_days",
                         *RETENTION_PERIOD_KEYS})
    default = ArchiveRetention()
    mark = reader.mark()
    after = reader.attempt(
        lambda: reader.positive("archive_days_after_password", default.days_after_password),
        default.days_after_password)
    most = reader.attempt(lambda: reader.positive("archive_max_days", default.max_days),
                          default.max_days)
    if not reader.clean_since(mark):
        return default
    if most > MAX_RETENTION_DAYS:
        raise reader.fail("archive_max_days", f"must be at most {MAX_RETENTION_DAYS:,} "
                          f"(ten years), not {most}")
    if after > most:
        raise reader.fail("archive_days_after_password", f"{after} is more than "
                          f"archive_max_days ({most}): an archive is never kept longer")
    return ArchiveRetention(days_after_password=after, max_days=most)


def _retention_days(reader: _Reader, key: str, default: int) -> int:
    value = reader.positive(key, default)
    most = (MAX_INCIDENT_DAYS if key in ("incident_days", "audit_days")
            else MAX_RETENTION_DAYS)
    if value > most:
        raise reader.fail(key, f"must be at most {most:,} days, not {value}")
    return value


def _read_retention_periods(reader: _Reader) -> RetentionPeriods:
    """``[retention]`` for conversation state, the recipient book, incidents and audit
    records: each key optional (its default in :class:`RetentionPeriods`), a whole number
    of days; audit records are kept longest, so the record outlives what it describes."""
    default = RetentionPeriods()
    mark = reader.mark()
    days = {key: reader.attempt(_retention_days, getattr(default, key), reader, key,
                                getattr(default, key))
            for key in RETENTION_PERIOD_KEYS}
    if not reader.clean_since(mark):
        return default
    others = [key for key in RETENTION_PERIOD_KEYS if key != "audit_days"]
    longest = max(others, key=days.__getitem__)
    if days["audit_days"] < days[longest]:
        raise reader.fail("audit_days", f"{days['audit_days']} is less than {longest} "
                          f"({days[longest]}): the audit record must outlive what it describes")
    return RetentionPeriods(**days)


def _governance_contacts(reader: _Reader, people: Mapping[str, tuple[str, ...]]
                         ) -> tuple[str, ...]:
    contacts: list[str] = []
    for entry in reader.strings("contacts", ()):
        if entry not in people and not _USER_ID_RE.fullmatch(entry):
            raise reader.fail("contacts", f"{entry!r} is neither a person listed in [people] "
                              "nor a channel-qualified user id (console:NAME, "
                              "slack:U0123ABCD, teams:<Entra object id>)")
        contacts.append(entry if entry in people else _check_user_id(reader, "contacts", entry))
    return tuple(dict.fromkeys(contacts))


def _governance_email(reader: _Reader) -> str | None:
    email = reader.get("email", str, None)
    if email is not None:
        email = email.strip()
        local, _, domain = email.partition("@")
        if not local or "." not in domain or any(c.isspace() for c in email):
            raise reader.fail("email", f"{email!r} is not an email address")
    return email or None


def _read_governance(reader: _Reader, people: Mapping[str, tuple[str, ...]]) -> Governance:
    """``[governance]``: optional. ``contacts`` are ids or persons from ``[people]``, told
    of every reported mistake; ``email`` an address the reporter is given."""
    reader.unknown_keys({"contacts", "email"})
    return Governance(contacts=reader.attempt(lambda: _governance_contacts(reader, people), ()),
                      email=reader.attempt(lambda: _governance_email(reader), None))


def _sms_template(password: _Reader) -> str:
    template = password.text("sms_template")
    for needed in ("{reference}", "{password}"):
        if needed not in template:
            raise password.fail("sms_template", f"must contain {needed}")
    try:
        template.format(reference="SH-TEST-00", password="x", organisation="x")
    except (KeyError, IndexError, ValueError) as exc:
        raise password.fail(
            "sms_template", f"only {{reference}}, {{password}} and {{organisation}} may be "
            f"used ({exc})"
        ) from exc
    return template


def _timezone(org: _Reader) -> ZoneInfo:
    tz_name = org.text("timezone", "Europe/London")
    try:
        return ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise org.fail("timezone", f"{tz_name!r} is not a known time zone") from exc


def _at_least_one(reader: _Reader, name: str, what: str) -> tuple[str, ...]:
    values = reader.strings(name)
    if not values:
        raise reader.fail(name, f"must list at least one {what}")
    return values


def _call_window_end(window: _Reader, start: time | None) -> time:
    end = _parse_time(window, "end")
    if start is not None and end <= start:
        raise window.fail("end", "must be later than start")
    return end


def _whole(reader: _Reader, name: str, default: int, problem: str) -> int:
    value = int(reader.get(name, int, default))
    if not 0 <= value <= MAX_NUMBER:
        raise reader.fail(name, problem.format(value=value))
    return value


def _link_statement(email: _Reader) -> str:
    link_statement = email.text("link_statement", DEFAULT_LINK_STATEMENT)
    if "attach" in link_statement.lower():
        raise email.fail("link_statement", "closes an email that carries a download link, "
                         "not an attachment: it must not speak of an attachment")
    return link_statement


def _read_levels(root: _Reader, *, approvers_known: bool, any_approver: bool
                 ) -> tuple[Level, ...]:
    levels: list[Level] = []
    names: list[str] = []
    for i, reader in enumerate(_table_readers(root, "classification", "levels",
                                              required=True)):
        level = _read_level(reader)
        if level is None:
            continue
        if level.name in names:
            root.found.append(PolicyError(
                f"policy key `classification[{i}].name`: {level.name} appears twice"))
            continue
        names.append(level.name)
        if ((level.approval != "never" or level.special_category_approval)
                and approvers_known and not any_approver):
            root.found.append(PolicyError(
                f"policy key `approval.approvers`: level {level.name} needs approval but no "
                "approvers are listed"
            ))
        levels.append(level)
    return tuple(levels)


ROOT_KEYS = frozenset({"organisation", "intake", "recipients", "purpose", "approval",
                       "password", "email", "classification", "people", "retention",
                       "information_category", "agreement", "governance"})


def parse_policy(document: Mapping[str, Any], *, source: str = "<policy>") -> Policy:
    """Validate a parsed TOML document and build the :class:`Policy`; a
    :class:`PolicyError` carries every problem found (``errors``), its message the first."""
    root = _Reader(document, "")
    root.unknown_keys(set(ROOT_KEYS))
    org = root.sub("organisation")
    org.unknown_keys({"name", "timezone"})
    tz = org.attempt(lambda: _timezone(org), ZoneInfo("UTC"))

    intake = root.sub("intake")
    intake.unknown_keys(
        {"max_file_mb", "max_files", "join_window_seconds", "draft_expiry_hours",
         "blocked_kinds", "flag_identifying_names", "neutral_member_names"}
    )
    recipients = root.sub("recipients")
    recipients.unknown_keys({"webmail_domains", "generic_mailboxes", "sharing_agreements"})
    if "sharing_agreements" in recipients.table:
        recipients.found.append(recipients.fail("sharing_agreements", SHARING_AGREEMENTS_MOVED))
    purpose = root.sub("purpose")
    purpose.unknown_keys({"min_length", "lawful_bases"})
    lawful_bases = purpose.attempt(
        lambda: _at_least_one(purpose, "lawful_bases", "lawful basis"), ())

    approval = root.sub("approval")
    approval.unknown_keys({"expires_after_hours", "approvers"})
    people = _read_people(root.sub("people", required=False))
    approvers_reader = approval.sub("approvers", required=False)
    mark = root.mark()
    approvers = _read_approvers(approvers_reader, people)
    approvers_known = root.clean_since(mark) and approvers_reader.found is root.found

    password = root.sub("password")
    password.unknown_keys({"sms_template", "call_window", "delivery"})
    template = password.attempt(lambda: _sms_template(password), "")
    window = password.sub("call_window")
    window.unknown_keys({"start", "end", "days", "min_lead_minutes", "max_days_ahead"})
    start = window.attempt(lambda: _parse_time(window, "start"), None)
    end = window.attempt(lambda: _call_window_end(window, start), None)
    days = window.attempt(lambda: _at_least_one(window, "days", "day"), ())
    if days:  # checked apart: each must be a weekday
        days = window.attempt(lambda: window.strings("days", allowed=WEEKDAYS), ())

    rules = password.sub("delivery", required=False)
    rules.unknown_keys({"max_attempts", "retry_backoff_seconds", "call_retry_minutes",
                        "heads_up_minutes", "voice_language", "voice_name", "code_attempts"})
    heads_up = rules.attempt(lambda: _whole(
        rules, "heads_up_minutes", 0,
        f"must be 0 (no heads-up SMS) or more, at most {MAX_NUMBER:,}"), 0)
    lead = window.attempt(lambda: _whole(
        window, "min_lead_minutes", 10, f"must be 0 to {MAX_NUMBER:,}, not {{value}}"), 10)
    delivery_rules = DeliveryRules(
        max_attempts=rules.attempt(lambda: rules.positive("max_attempts", 4), 4),
        retry_backoff_seconds=rules.attempt(
            lambda: rules.positive("retry_backoff_seconds", 30), 30),
        call_retry_minutes=rules.attempt(lambda: rules.positive("call_retry_minutes", 15), 15),
        heads_up_minutes=heads_up,
        voice_language=rules.attempt(lambda: rules.text("voice_language", "en-GB"), "en-GB"),
        voice_name=rules.attempt(lambda: rules.text("voice_name", "Polly.Amy"), "Polly.Amy"),
        code_attempts=rules.attempt(lambda: rules.positive("code_attempts", 3), 3),
    )

    email = root.sub("email")
    email.unknown_keys({"deletion_statement", "link_statement"})
    link_statement = email.attempt(lambda: _link_statement(email), DEFAULT_LINK_STATEMENT)

    levels = _read_levels(root, approvers_known=approvers_known, any_approver=bool(approvers))

    max_file_bytes = intake.attempt(lambda: intake.positive("max_file_mb"), 0) * MB
    max_files = intake.attempt(lambda: intake.positive("max_files", 50), 50)
    join_window = intake.attempt(lambda: intake.positive("join_window_seconds", 120), 120)
    draft_expiry = intake.attempt(lambda: intake.positive("draft_expiry_hours", 24), 24)
    blocked_kinds = intake.attempt(lambda: intake.strings("blocked_kinds", ()), ())
    flag_names = intake.attempt(
        lambda: bool(intake.get("flag_identifying_names", bool, True)), True)
    neutral_names = intake.attempt(
        lambda: bool(intake.get("neutral_member_names", bool, True)), True)
    webmail = recipients.attempt(
        lambda: tuple(d.lower() for d in recipients.strings("webmail_domains")), ())
    generic = recipients.attempt(
        lambda: tuple(m.lower() for m in recipients.strings("generic_mailboxes")), ())
    categories = _read_information_categories(root)
    agreements = _read_register(
        root, levels=_listed_names(document, "classification", "name"),
        categories=_listed_names(document, "information_category", "key"), webmail=webmail)
    min_length = purpose.attempt(lambda: purpose.positive("min_length", 20), 20)
    approval_expiry = approval.attempt(lambda: approval.positive("expires_after_hours", 24), 24)
    max_days_ahead = window.attempt(lambda: window.positive("max_days_ahead", 14), 14)
    deletion_statement = email.attempt(lambda: email.text("deletion_statement"), "")
    retention_reader = root.sub("retention", required=False)
    archive_retention = retention_reader.attempt(lambda: _read_retention(retention_reader),
                                                 ArchiveRetention())
    retention = retention_reader.attempt(lambda: _read_retention_periods(retention_reader),
                                         RetentionPeriods())
    governance = _read_governance(root.sub("governance", required=False), people)
    name = org.attempt(lambda: org.text("name"), "")
    if root.found:
        raise PolicyError(str(root.found[0]), errors=root.found)
    assert start is not None and end is not None  # both read, or an error was found
    return Policy(
        organisation=name,
        timezone=tz,
        levels=levels,
        max_file_bytes=max_file_bytes,
        max_files=max_files,
        join_window_seconds=join_window,
        draft_expiry_hours=draft_expiry,
        blocked_kinds=blocked_kinds,
        flag_identifying_names=flag_names,
        neutral_member_names=neutral_names,
        webmail_domains=webmail,
        generic_mailboxes=generic,
        agreements=agreements,
        purpose_min_length=min_length,
        lawful_bases=lawful_bases,
        approval_expiry_hours=approval_expiry,
        approvers=approvers,
        people=people,
        sms_template=template,
        call_window=CallWindow(
            start=start,
            end=end,
            days=tuple(WEEKDAYS.index(d) for d in days),
            min_lead_minutes=lead,
            max_days_ahead=max_days_ahead,
        ),
        delivery=delivery_rules,
        deletion_statement=deletion_statement,
        source=source,
        archive_retention=archive_retention,
        retention=retention,
        information_categories=categories,
        governance=governance,
        link_statement=link_statement,
    )


def load_policy(path: Path | None = None) -> Policy:
    """Load ``path``, or the shipped default policy when ``path`` is None."""
    if path is None:
        ref = resources.files("bot").joinpath("policies/default.toml")
        text, source = ref.read_text(encoding="utf-8"), "bot/policies/default.toml"
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise PolicyError(f"policy file {path} cannot be read: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise PolicyError(f"policy file {path} is not UTF-8 text: byte {exc.start} "
                              f"(0x{exc.object[exc.start]:02x}) cannot be read; save it as "
                              "UTF-8") from None
        source = str(path)
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"policy file {source} is not valid TOML: {exc}") from exc
    return parse_policy(document, source=source)
