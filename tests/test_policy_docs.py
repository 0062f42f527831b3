"""docs/policy.md stays true: every key the policy loader accepts is described there.

The keys are taken from the loader itself, not from a list kept beside it: the shipped
policy (which uses every table) is parsed while each table's check for unknown keys is
recorded, so a key added to the loader and not to the guide fails here."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from bot import policy as loader
from bot.policy import load_policy

ROOT = Path(__file__).resolve().parents[1]
GUIDE = (ROOT / "docs" / "policy.md").read_text(encoding="utf-8")


def accepted_keys(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    seen: set[str] = set()
    original = loader._Reader.unknown_keys

    def recording(self: Any, known: set[str]) -> None:
        table = re.sub(r"\[\d+\]", "", self.path)  # classification[2] -> classification
        seen.update(f"{table}.{key}" if table else key for key in known)
        original(self, known)

    monkeypatch.setattr(loader._Reader, "unknown_keys", recording)
    load_policy(None)
    load_policy(ROOT / "examples" / "policy-official.toml")
    return seen


def test_every_key_the_loader_accepts_is_in_the_guide(monkeypatch: pytest.MonkeyPatch) -> None:
    keys = accepted_keys(monkeypatch)
    # Every table's checks ran (a table the policies lacked would hide its keys).
    for table in ("organisation", "intake", "recipients", "purpose", "approval", "password",
                  "password.call_window", "password.delivery", "email", "classification",
                  "information_category", "agreement", "retention", "governance"):
        assert any(key.startswith(table + ".") for key in keys), table
    missing = sorted(key for key in keys if f"`{key}`" not in GUIDE)
    assert not missing, f"docs/policy.md does not describe: {missing}"


def test_tables_with_free_keys_are_described() -> None:
    # [people] and [approval.approvers] take names and ids as keys, not a fixed set.
    assert "`people.<person>`" in GUIDE
    assert "`approval.approvers`" in GUIDE


def test_the_guide_names_no_key_the_loader_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    keys = accepted_keys(monkeypatch) | {"people.<person>"}
    documented = set(re.findall(r"^\| `([a-z_.<>]+)` \|", GUIDE, flags=re.M))
    assert documented - keys == set(), "documented but not accepted"
