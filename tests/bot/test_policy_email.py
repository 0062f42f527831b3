"""The policy's ``[email]`` statements: the deletion statement closes an email with the
archive attached, the link statement one with a download link; a policy written before the
link statement existed still loads, and a link statement speaking of an attachment is
refused naming its key."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from bot.policy import PolicyError, load_policy, parse_policy
from bot.policy_rules import DEFAULT_LINK_STATEMENT

ROOT = Path(__file__).resolve().parents[2]


def default_doc() -> dict[str, Any]:
    text = resources.files("bot").joinpath("policies/default.toml").read_text()
    return tomllib.loads(text)


@pytest.mark.parametrize("path", [None, ROOT / "examples" / "policy-official.toml"])
def test_shipped_policies_speak_of_an_attachment_only_for_the_archive(path: Path | None) -> None:
    policy = load_policy(path)
    assert "attachment" in policy.deletion_statement
    assert "attach" not in policy.link_statement.lower()
    assert "link" in policy.link_statement


def test_a_policy_without_a_link_statement_gets_a_true_one() -> None:
    doc = default_doc()
    doc["email"] = {"deletion_statement": "Delete the attachment when you are done."}
    policy = parse_policy(doc)
    assert policy.deletion_statement == "Delete the attachment when you are done."
    assert policy.link_statement == DEFAULT_LINK_STATEMENT
    assert "attach" not in DEFAULT_LINK_STATEMENT.lower()


def test_an_organisations_own_link_statement() -> None:
    doc = default_doc()
    doc["email"]["link_statement"] = "Do not forward this link."
    assert parse_policy(doc).link_statement == "Do not forward this link."


@pytest.mark.parametrize(("value", "problem"), [
    ("This email has an attachment which contains personal information.",
     "must not speak of an attachment"),
    ("   ", "must not be empty"),
    (3, "must be a str"),
])
def test_a_bad_link_statement_is_refused_naming_the_key(value: Any, problem: str) -> None:
    doc = default_doc()
    doc["email"]["link_statement"] = value
    with pytest.raises(PolicyError, match=r"policy key `email.link_statement`: .*") as info:
        parse_policy(doc)
    assert problem in str(info.value)
