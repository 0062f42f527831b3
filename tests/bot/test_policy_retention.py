"""The policy's ``[retention]`` of archives handed back in the chat: shipped defaults, an
organisation's own numbers, and every mistake named by its key."""

from __future__ import annotations

import re
import tomllib
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import pytest

from bot.policy import PolicyError, load_policy, parse_policy
from bot.policy_rules import ArchiveRetention, RetentionPeriods


def default_doc() -> dict[str, Any]:
    text = resources.files("bot").joinpath("policies/default.toml").read_text()
    return tomllib.loads(text)


def test_default_policy_keeps_archives_seven_days_after_the_password_thirty_at_most() -> None:
    assert load_policy().archive_retention == ArchiveRetention(days_after_password=7,
                                                               max_days=30)


def test_a_policy_without_retention_keeps_the_defaults() -> None:
    doc = default_doc()
    del doc["retention"]
    assert parse_policy(doc).archive_retention == ArchiveRetention()


def test_an_organisations_own_retention() -> None:
    doc = default_doc()
    doc["retention"] = {"archive_days_after_password": 2, "archive_max_days": 2}
    assert parse_policy(doc).archive_retention == ArchiveRetention(2, 2)


@pytest.mark.parametrize(("table", "message"), [
    ({"archive_days_after_password": 0}, "`retention.archive_days_after_password`: must be "
                                         "greater than 0"),
    ({"archive_max_days": "30"}, "`retention.archive_max_days`: must be a int"),
    ({"archive_max_days": True}, "`retention.archive_max_days`: must be a whole number"),
    ({"archive_days_after_password": 10, "archive_max_days": 5},
     "`retention.archive_days_after_password`: 10 is more than archive_max_days"),
    ({"archive_days": 3}, "`retention.archive_days`: unknown key"),
    ({"archive_max_days": 3651}, "`retention.archive_max_days`: must be at most 3,650"),
])
def test_retention_mistakes_name_the_key(table: dict[str, Any], message: str) -> None:
    doc = default_doc()
    doc["retention"] = table
    with pytest.raises(PolicyError) as raised:
        parse_policy(doc)
    assert message in str(raised.value)


def test_retention_must_be_a_table() -> None:
    doc = default_doc()
    doc["retention"] = 7
    with pytest.raises(PolicyError, match="`retention`: missing or not a table"):
        parse_policy(doc)


def test_the_longest_retention_allowed_still_gives_a_cutoff() -> None:
    doc = default_doc()
    doc["retention"] = {"archive_days_after_password": 3650, "archive_max_days": 3650}
    keep = parse_policy(doc).archive_retention
    now = datetime(2026, 12, 3, tzinfo=UTC)
    assert now - timedelta(days=keep.max_days) < now - timedelta(days=3649)


# --- conversation state, the recipient book, incidents ---------------------------------------


def test_default_periods_for_the_other_artefacts() -> None:
    assert load_policy().retention == RetentionPeriods(
        conversation_days=30, recipient_days=365, incident_days=2192)
    assert RetentionPeriods().incident_days >= 6 * 365 + 1  # six years, leap days counted


def test_a_policy_without_the_period_keys_keeps_the_defaults() -> None:
    doc = default_doc()
    doc["retention"] = {"archive_max_days": 30}
    assert parse_policy(doc).retention == RetentionPeriods()


def test_an_organisations_own_periods() -> None:
    doc = default_doc()
    doc["retention"] = {"conversation_days": 7, "recipient_days": 180, "incident_days": 3653,
                        "audit_days": 3653}
    assert parse_policy(doc).retention == RetentionPeriods(7, 180, 3653, 3653)


@pytest.mark.parametrize(("table", "message"), [
    ({"conversation_days": 0}, "`retention.conversation_days`: must be greater than 0"),
    ({"recipient_days": -1}, "`retention.recipient_days`: must be greater than 0"),
    ({"incident_days": "6y"}, "`retention.incident_days`: must be a int"),
    ({"incident_days": False}, "`retention.incident_days`: must be a whole number"),
    ({"conversation_days": 3651}, "`retention.conversation_days`: must be at most 3,650"),
    ({"recipient_days": 3651}, "`retention.recipient_days`: must be at most 3,650"),
    ({"incident_days": 36526}, "`retention.incident_days`: must be at most 36,525"),
    ({"recipient_day": 30}, "`retention.recipient_day`: unknown key"),
])
def test_period_mistakes_name_the_key(table: dict[str, Any], message: str) -> None:
    doc = default_doc()
    doc["retention"] = table
    with pytest.raises(PolicyError) as raised:
        parse_policy(doc)
    assert message in str(raised.value)


def test_the_longest_periods_allowed_still_give_a_cutoff() -> None:
    doc = default_doc()
    doc["retention"] = {"conversation_days": 3650, "recipient_days": 3650,
                        "incident_days": 36525, "audit_days": 36525}
    periods = parse_policy(doc).retention
    now = datetime(2026, 12, 3, tzinfo=UTC)
    for days in (periods.conversation_days, periods.recipient_days, periods.incident_days):
        assert now - timedelta(days=days) < now


def test_audit_records_must_outlive_what_they_describe() -> None:
    doc = default_doc()
    doc["retention"] = {"incident_days": 3000, "audit_days": 2999}
    with pytest.raises(PolicyError, match=re.escape(
            "`retention.audit_days`: 2999 is less than incident_days (3000)")):
        parse_policy(doc)
    doc["retention"] = {"incident_days": 3000, "audit_days": 3000}
    assert parse_policy(doc).retention.audit_days == 3000
