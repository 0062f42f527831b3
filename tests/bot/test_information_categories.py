"""What kind of information a share carries: the policy's categories, read and checked, the
answer read from a typed list, and special category data needing a manager where the level
says so."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.options import pick_several
from bot.policy import PolicyError, load_policy, parse_policy
from bot.replies import Option

DEFAULT = Path(__file__).resolve().parents[2] / "bot" / "policies" / "default.toml"
NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)


def document(**changes: Any) -> dict[str, Any]:
    doc = tomllib.loads(DEFAULT.read_text(encoding="utf-8"))
    doc.update(changes)
    return doc


def test_the_shipped_policy_marks_special_category_and_criminal_offence_data() -> None:
    policy = load_policy()
    special = {c.key for c in policy.information_categories if c.special}
    assert {"health", "safeguarding", "criminal-offence"} <= special
    assert {"education", "hr", "financial", "contact-details", "other-personal"}.isdisjoint(
        special)
    assert policy.level("CONTROLLED").special_category_approval


@pytest.mark.parametrize(("category", "key", "problem"), [
    ({"key": "Health", "label": "Health", "special": True}, "information_category[0].key",
     "lower-case"),
    ({"key": "health", "label": "Health, social care", "special": True},
     "information_category[0].label", "no comma"),
    ({"key": "health", "label": "Health"}, "information_category[0].special", "missing"),
    ({"key": "health", "label": "Health", "special": True, "art": 9},
     "information_category[0].art", "unknown key"),
])
def test_a_category_the_policy_cannot_use_is_named(category: dict[str, Any], key: str,
                                                   problem: str) -> None:
    with pytest.raises(PolicyError) as raised:
        parse_policy(document(information_category=[category], agreement=[]))
    assert f"`{key}`" in str(raised.value) and problem in str(raised.value)


def test_a_category_listed_twice_is_refused() -> None:
    twice = [{"key": "health", "label": "Health", "special": True},
             {"key": "health", "label": "Medical", "special": True}]
    with pytest.raises(PolicyError, match="appears twice"):
        parse_policy(document(information_category=twice, agreement=[]))


def test_no_categories_in_a_policy_is_allowed() -> None:
    policy = parse_policy(document(information_category=[], agreement=[]))
    assert policy.information_categories == ()


@pytest.mark.parametrize(("categories", "needed"), [
    (("contact-details",), False),  # within the NHS agreement, nothing special
    (("contact-details", "health"), True),  # health is special category data
    (("criminal-offence",), True),  # Art 10
    (("retired-key",), True),  # a key the policy no longer lists reads as special
])
def test_special_category_data_needs_a_manager_at_controlled(categories: tuple[str, ...],
                                                              needed: bool) -> None:
    policy = load_policy()
    assert policy.approval_required(policy.level("CONTROLLED"), email_domain="nhs.net",
                                    now=NOW, categories=categories) is needed


def test_a_level_without_the_rule_is_decided_by_its_approval_rule_alone() -> None:
    doc = document()
    for level in doc["classification"]:
        level["special_category_approval"] = False
    policy = parse_policy(doc)
    assert not policy.approval_required(policy.level("CONTROLLED"), email_domain="nhs.net",
                                        now=NOW, categories=("health",))


OPTIONS = (Option("health", "Health or medical"), Option("education", "Education"),
           Option("hr", "HR / employment"))


@pytest.mark.parametrize(("typed", "picked", "unknown"), [
    ("1, 3", ("health", "hr"), None),
    ("hr,health", ("health", "hr"), None),  # in the options' order
    ("Education, education, 2", ("education",), None),  # once each
    ("HR / employment", ("hr",), None),
    ("1, astrology", (), "astrology"),
    (" , ", (), None),
    ("", (), None),
])
def test_several_answers_are_read_by_number_value_or_label(
        typed: str, picked: tuple[str, ...], unknown: str | None) -> None:
    assert pick_several(OPTIONS, typed) == (picked, unknown)
