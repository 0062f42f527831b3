"""Hostile input, property-based, for every parser in the core: recipients, file names,
file contents, the policy file, call times, typed commands and sealed passwords.

Each property says what may come out (a value with stated qualities, or the module's own
error class) for anything that goes in. Example budgets are explicit; the totals tried are
printed at the end of the session (see docs/reliability.md)."""

from __future__ import annotations

import copy
import re
import string
import tomllib
import unicodedata
from datetime import UTC, date, datetime, time, timedelta
from importlib import resources
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot import engine, naming
from bot.answer_checks import parse_call_time
from bot.events import Answer, Command
from bot.filecheck import BLOCKABLE_KINDS, inspect_file
from bot.packaging import neutral_name, sanitise_name
from bot.policy import PolicyError, load_policy, parse_policy
from bot.policy_rules import Policy
from bot.recipients import (
    RecipientError,
    check_email,
    check_name,
    parse_phone,
)
from bot.reference import is_reference, normalise_reference
from bot.state import TurnContext
from bot.vault import Vault, VaultError, generate_key
from handlers.conversation import COMMANDS, parse_text
from handlers.password_sends import outcomes
from tests.reliability.strategies import file_names, fuzz_settings, hostile_text, tried

POLICY = load_policy()
E164 = re.compile(r"\+[1-9][0-9]{1,14}")


# --- recipients ---------------------------------------------------------------------------


@fuzz_settings(600)
@given(text=st.one_of(hostile_text(), st.emails().map(str),
                      st.builds(lambda local, domain: f"{local}@{domain}", hostile_text(),
                                st.sampled_from(["nhs.net", "gmail.com", "xn--80ak6aa92e.com",
                                                 "kent.gov.uk", "[127.0.0.1]", "localhost"]))),
       protected=st.booleans())
def test_check_email_returns_an_address_or_says_why(text: str, protected: bool) -> None:
    tried("recipients.check_email")
    try:
        checked = check_email(text, protected=protected, webmail_domains=POLICY.webmail_domains,
                              generic_mailboxes=POLICY.generic_mailboxes)
    except RecipientError as err:
        assert err.field == "email" and err.message.strip()
        return
    result = checked.address
    assert "@" in result and result == result.strip() and len(result) <= 320
    assert not any(unicodedata.category(c) in ("Cc", "Cs") for c in result)
    # The domain agreements are matched on: ASCII, lower case, the address's own.
    ascii_domain, domain = checked.ascii_domain, result.rsplit("@", 1)[1].lower()
    assert ascii_domain and ascii_domain.isascii() and ascii_domain == ascii_domain.lower()
    assert ascii_domain == domain if domain.isascii() else "xn--" in ascii_domain
    if protected:
        assert domain.isascii()  # no look-alike letters reach an approver
        assert not any(domain == d or domain.endswith("." + d) for d in POLICY.webmail_domains)
        local = result.rsplit("@", 1)[0].casefold().split("+", 1)[0]
        assert local not in POLICY.generic_mailboxes


@fuzz_settings(600)
@given(text=st.one_of(hostile_text(),
                      st.from_regex(r"\A\+?[0-9 ()\-]{3,25}( ?(ext|x)\.? ?[0-9]{1,6})?\Z"),
                      st.builds(lambda a, b: a + b, st.sampled_from(["+44 ", "0", "+1 ", "+"]),
                                hostile_text())),
       region=st.sampled_from(["GB", "US", "FR", "IN", "XX", "", "gb", " GB ", "ZZ", "\x00"]))
def test_parse_phone_gives_e164_or_says_why(text: str, region: str) -> None:
    tried("recipients.parse_phone")
    try:
        phone = parse_phone(text, default_region=region)
    except RecipientError as err:
        assert err.field == "phone" and err.message.strip()
        return
    assert E164.fullmatch(phone.e164), phone
    assert phone.extension is None or phone.extension.isdigit()
    assert phone.display and isinstance(phone.is_mobile, bool)


@fuzz_settings(600)
@given(text=hostile_text(), max_len=st.sampled_from([1, 20, 200]))
def test_check_name_tidies_or_says_why(text: str, max_len: int) -> None:
    tried("recipients.check_name")
    try:
        value = check_name(text, field="organisation", label="Organisation", max_len=max_len)
    except RecipientError as err:
        assert err.field == "organisation" and err.message.strip()
        return
    assert value == value.strip() and 0 < len(value) <= max_len
    assert "  " not in value and any(c.isalnum() for c in value)
    assert not any(unicodedata.category(c) in ("Cc", "Cs") for c in value)
    assert "\u202e" not in value and "\n" not in value


# --- file names and contents ---------------------------------------------------------------


@fuzz_settings(600)
@given(name=file_names())
def test_naming_never_raises_and_explains(name: str) -> None:
    tried("naming.identifying_reasons")
    reasons = naming.identifying_reasons(name)
    assert all(isinstance(r, str) and r.strip() for r in reasons)
    message = naming.identifying_message(name)
    assert (message is None) == (not reasons)


@fuzz_settings(600)
@given(name=file_names(), position=st.integers(min_value=1, max_value=10_000))
def test_archive_member_names_cannot_escape_the_archive(name: str, position: int) -> None:
    tried("packaging.member_names")
    for member in (neutral_name(position, name), sanitise_name(name, position)):
        assert member and member not in (".", "..")
        assert "/" not in member and "\\" not in member and "\x00" not in member
        assert not member.startswith(".") and len(member.encode("utf-8")) <= 255
        assert not any(unicodedata.category(c) in ("Cc", "Cf", "Cs") for c in member)
    assert neutral_name(position, name).startswith(f"document-{position}")


PREFIXES = [b"", b"MZ", b"MZ" + b"\x00" * 58 + b"\x40\x00\x00\x00" + b"PE\x00\x00",
            b"PK\x03\x04", b"PK\x05\x06", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", b"\xca\xfe\xba\xbe",
            b"\x7fELF", b"#!/bin/sh\n", b"%PDF-1.7\n", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff",
            b"[InternetShortcut]\nURL=", b"L\x00\x00\x00\x01\x14\x02\x00", b"CD001",
            b"{\\rtf1", b"<html><script>", b"\xef\xbb\xbf", b"\xff\xfe", b"\x00" * 64]


@fuzz_settings(500)
@given(prefix=st.sampled_from(PREFIXES), body=st.binary(max_size=4096), name=file_names(),
       max_bytes=st.sampled_from([None, 1, 100, 10**9]),
       blocked=st.lists(st.sampled_from([*BLOCKABLE_KINDS, "", "EXECUTABLE", "nonsense"]),
                        max_size=4))
def test_inspect_file_judges_any_bytes_under_any_name(tmp_path: Path, prefix: bytes, body: bytes,
                                                      name: str, max_bytes: int | None,
                                                      blocked: list[str]) -> None:
    tried("filecheck.inspect_file")
    path = tmp_path / "upload.bin"
    path.write_bytes(prefix + body)
    verdict = inspect_file(path, display_name=name, blocked=blocked, max_bytes=max_bytes)
    assert verdict.kind and isinstance(verdict.kind, str)
    assert verdict.accepted == (verdict.reason is None)
    if not prefix + body:
        assert not verdict.accepted
    if verdict.reason:
        assert "\x00" not in verdict.reason and "\u202e" not in verdict.reason
        assert len(verdict.reason) < 1000
    if max_bytes is not None and len(prefix + body) > max_bytes:
        assert not verdict.accepted


# --- the policy file -------------------------------------------------------------------------


def _default_document() -> dict[str, Any]:
    text = resources.files("bot").joinpath("policies/default.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


DEFAULT_DOC = _default_document()


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _paths(value, (*prefix, i))
    return found


PATHS = _paths(DEFAULT_DOC)
TOML_JUNK = st.recursive(
    st.one_of(st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), st.floats(),
              st.sampled_from([0, -1, 2**31, 2**63, 10**20, -(10**20)]),
              hostile_text(surrogates=False), st.dates(), st.times(), st.datetimes(),
              st.sampled_from(["", "never", "always", "without-agreement", "sms", "voice",
                               "portal", "archive", "mon", "Europe/London", "UTC",
                               "Mars/Olympus", "../../etc/passwd", "{password}",
                               "{reference} {password} {password.x}", "{reference}{password}{9}",
                               "00:00", "23:59", "24:00", "9:00", "RESTRICTED", "lower"])),
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(st.text(max_size=12), children, max_size=4)),
    max_leaves=8,
)


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        doc = doc[key]
    return doc


def _mutate(doc: dict[str, Any], path: tuple[Any, ...], op: str, junk: Any) -> None:
    parent: Any = doc
    for key in path[:-1]:
        parent = parent[key]
    last = path[-1]
    if op == "delete":
        del parent[last]
    elif op == "replace":
        parent[last] = junk
    elif op == "add" and isinstance(parent, dict):
        parent[f"{last}_extra"] = junk
    elif op == "add" and isinstance(parent, list):
        parent.append(junk)
    elif op == "duplicate" and isinstance(parent, list):
        parent.append(copy.deepcopy(parent[last]))


@fuzz_settings(500)
@given(mutations=st.lists(st.tuples(st.sampled_from(PATHS),
                                    st.sampled_from(["delete", "replace", "add", "duplicate"]),
                                    TOML_JUNK), min_size=1, max_size=4))
def test_parse_policy_on_mutated_documents_raises_only_policy_error(
        mutations: list[tuple[tuple[Any, ...], str, Any]]) -> None:
    tried("policy.parse_policy")
    doc = copy.deepcopy(DEFAULT_DOC)
    for path, op, junk in mutations:
        try:
            _mutate(doc, path, op, junk)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or replaced this path
    try:
        policy = parse_policy(doc, source="<fuzz>")
    except PolicyError as err:
        assert str(err).startswith("policy key `") or "policy" in str(err)
        return
    _policy_is_usable(policy)


def _policy_is_usable(policy: Policy) -> None:
    """A policy that loads must also work: levels, approvers, the SMS template, the call
    window and the time zone are all used by the engine."""
    assert policy.levels and policy.lawful_bases
    for level in policy.levels:
        assert policy.level(level.name) is level
        assert level.default_delivery in level.delivery_methods
    policy.sms_template.format(reference="SH-AAAA-22", password="x", organisation="x")
    assert policy.call_window.start < policy.call_window.end
    ctx = TurnContext(policy=policy, now=datetime(2026, 11, 23, 9, 30, tzinfo=UTC),
                      user_id="console:alice", default_region="GB",
                      new_reference=lambda: "SH-AAAA-22")
    parse_call_time("2026-11-24 10:00", ctx)
    now = ctx.now
    now + timedelta(hours=policy.approval_expiry_hours) + timedelta(
        hours=policy.draft_expiry_hours) + timedelta(seconds=policy.join_window_seconds)
    for level in policy.levels:
        now + timedelta(hours=level.link_expiry_hours)
    rules = policy.delivery
    now + timedelta(minutes=rules.call_retry_minutes) + timedelta(
        minutes=rules.heads_up_minutes)
    svc: Any = SimpleNamespace(policy=policy)
    for attempt in (1, 2, rules.max_attempts):
        for kind in ("sms", "voice"):
            assert now + outcomes._backoff(svc, attempt, kind) > now


NUMERIC_PATHS = [p for p in PATHS if isinstance(_get(DEFAULT_DOC, p), int)
                 and not isinstance(_get(DEFAULT_DOC, p), bool)]


@fuzz_settings(300)
@given(path=st.sampled_from(NUMERIC_PATHS),
       value=st.one_of(st.sampled_from([0, -1, 1, 2**31, 2**63, 10**20, -(10**20)]),
                       st.integers(min_value=-(10**12), max_value=10**12)))
def test_every_number_in_the_policy_is_bounded(path: tuple[Any, ...], value: int) -> None:
    tried("policy.parse_policy (numbers)")
    doc = copy.deepcopy(DEFAULT_DOC)
    _mutate(doc, path, "replace", value)
    try:
        policy = parse_policy(doc, source="<fuzz>")
    except PolicyError:
        return
    _policy_is_usable(policy)


@fuzz_settings(300)
@given(start=st.integers(min_value=0, max_value=6000), length=st.integers(0, 40),
       junk=st.text(alphabet=string.printable + "\x00\u202e漢", max_size=40))
def test_load_policy_on_damaged_files_raises_only_policy_error(
        tmp_path: Path, start: int, length: int, junk: str) -> None:
    tried("policy.load_policy (damaged TOML text)")
    text = resources.files("bot").joinpath("policies/default.toml").read_text(encoding="utf-8")
    start = start % max(1, len(text))
    damaged = text[:start] + junk + text[start + length:]
    path = tmp_path / "policy.toml"
    path.write_text(damaged, encoding="utf-8")
    try:
        policy = load_policy(path)
    except PolicyError as err:
        assert str(err)
        return
    _policy_is_usable(policy)


# --- call times, typed commands, references -------------------------------------------------


CTX_NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)


def _ctx(now: datetime) -> TurnContext:
    return TurnContext(policy=POLICY, now=now, user_id="console:alice", default_region="GB",
                       new_reference=lambda: "SH-AAAA-22")


FORMATS = ["%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%d/%m/%Y %H:%M", "%Y/%m/%d %H:%M",
           "%Y-%m-%d %H:%M:%S", "%d-%m-%Y %H:%M"]


@fuzz_settings(800)
@given(text=st.one_of(
    hostile_text(),
    st.builds(lambda d, f: d.strftime(f), st.datetimes(min_value=datetime(1, 1, 2),
                                                       max_value=datetime(9999, 12, 30)),
              st.sampled_from(FORMATS)),
    st.builds(lambda d: d.isoformat(), st.datetimes(
        timezones=st.sampled_from([UTC, *(__import__("zoneinfo").ZoneInfo(z) for z in
                                          ("Europe/London", "Pacific/Kiritimati",
                                           "America/Adak", "Asia/Kolkata"))]))),
    st.builds(lambda d, t: f"{d} {t}", st.dates(), st.times()),
    st.builds(lambda d, t: f"{d} {t}", st.dates(min_value=date(2026, 11, 20),
                                                max_value=date(2026, 12, 20)),
              st.times(min_value=time(8), max_value=time(18)).map(lambda t: f"{t:%H:%M}")),
    st.sampled_from(["0001-01-01T00:00+14:00", "9999-12-31T23:59-12:00", "0001-01-01 00:00",
                     "9999-12-31 23:59:59", "2026-11-24T10:00:00.000000+99:00"]),
), days_ahead=st.integers(min_value=-3, max_value=400))
def test_parse_call_time_gives_a_time_in_the_window_or_says_why(text: str, days_ahead: int
                                                                ) -> None:
    tried("answer_checks.parse_call_time")
    now = CTX_NOW + timedelta(days=days_ahead)
    result = parse_call_time(text, _ctx(now))
    if isinstance(result, str):
        assert result.strip() and "\x00" not in result
        return
    window = POLICY.call_window
    assert result.tzinfo is not None and result.utcoffset() == timedelta(0)
    assert now + timedelta(minutes=window.min_lead_minutes) <= result
    assert result <= now + timedelta(days=window.max_days_ahead)
    local = result.astimezone(POLICY.timezone)
    assert local.weekday() in window.days and window.start <= local.time() < window.end


@fuzz_settings(800)
@given(text=st.one_of(
    hostile_text(),
    st.builds(lambda cmd, ref, rest: f"{cmd} {ref} {rest}",
              st.sampled_from([*COMMANDS, "/cancel", "CANCEL", "Received", "call", "export",
                               "audit", "approve", "reject"]),
              st.one_of(st.from_regex(r"\A[Ss][Hh]-[0-9A-Z]{4}-[0-9A-Z]{2}\Z"), hostile_text()),
              hostile_text())),
    question=st.one_of(st.none(), st.sampled_from(engine.STEPS), hostile_text()))
def test_parse_text_gives_a_known_command_or_an_answer(text: str, question: str | None) -> None:
    tried("conversation.parse_text")
    event = parse_text(text, question=question)
    if isinstance(event, Command):
        assert event.name in COMMANDS
        if event.name in ("cancel", "received", "call") and event.args:
            assert is_reference(event.args[0])
            assert event.args[0] == normalise_reference(event.args[0])
    else:
        assert isinstance(event, Answer) and event.value == text and event.question == question


# --- sealed passwords -------------------------------------------------------------------------


VAULT = Vault(__import__("bot.vault", fromlist=["_decode_key"])._decode_key(generate_key()))
GOOD = VAULT.seal("Harvest-Cobweb-Tundra-Pocket-Sponge-48265", reference="SH-AAAA-22")


@fuzz_settings(800)
@given(sealed=st.one_of(
    hostile_text(),
    st.builds(lambda body: "v1:" + body, hostile_text()),
    st.builds(lambda raw: "v1:" + __import__("base64").urlsafe_b64encode(raw).decode(),
              st.binary(max_size=200)),
    st.builds(lambda i, c: GOOD[:i] + c + GOOD[i + 1:], st.integers(0, len(GOOD) - 1),
              st.sampled_from(list("AQgw-_=:+/\x00é"))),
    st.just(GOOD[:-4]), st.just(GOOD + "AAAA")),
    reference=st.one_of(st.just("SH-AAAA-22"), hostile_text()))
def test_vault_open_on_junk_raises_only_vault_error(sealed: str, reference: str) -> None:
    tried("vault.open")
    try:
        opened = VAULT.open(sealed, reference=reference)
    except VaultError as err:
        assert "Harvest" not in str(err)
        return
    assert sealed == GOOD and reference == "SH-AAAA-22"
    assert opened == "Harvest-Cobweb-Tundra-Pocket-Sponge-48265"


def test_the_valid_seal_opens() -> None:
    assert VAULT.open(GOOD, reference="SH-AAAA-22").startswith("Harvest")
    with pytest.raises(VaultError):
        VAULT.open(GOOD, reference="SH-BBBB-22")
