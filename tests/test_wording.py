"""Guards on what people read: no "1 file(s)" (counted nouns go through
``bot.messages.words.plural``), no question followed by a colon ("...do with it?:"), and
none of the slips issue 15 found, in every string of ``bot/messages`` and in the terminal
session recorded in ``docs/terminal.md`` (a real ``safehaven chat``)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from bot.messages.words import labelled, plural
from bot.replies import Form, FormField
from channels.console.render import render

ROOT = Path(__file__).resolve().parents[1]
MESSAGES = sorted((ROOT / "bot/messages").glob("*.py"))
# "file(s)", "day(s)", "match(es)"; "http(s)" names a URL scheme, not a count.
BRACKETED_PLURAL = re.compile(r"[a-z]\((?:s|es)\)", re.IGNORECASE)
QUESTION_COLON = re.compile(r"\?:")
SLIPS = ("(yes = ", "cancelled, so it can no longer be cancelled",
         "cancelled and can no longer be cancelled")


def strings(path: Path) -> list[str]:
    """Every string literal in ``path`` but docstrings (adjacent literals joined, as Python
    joins them; the fixed parts of f-strings)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef
                                | ast.ClassDef)
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    return [node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and id(node) not in docstrings]


def problems(text: str) -> list[str]:
    shown = text.replace("http(s)", "http")
    said = [m.group(0) for m in BRACKETED_PLURAL.finditer(shown)]
    said += [m.group(0) for m in QUESTION_COLON.finditer(shown)]
    said += [slip for slip in SLIPS if slip in shown]
    return said


@pytest.mark.parametrize("path", MESSAGES, ids=lambda p: p.name)
def test_no_message_counts_with_brackets_or_asks_with_a_colon(path: Path) -> None:
    bad = {s: problems(s) for s in strings(path) if problems(s)}
    assert not bad, f"{path.name}: {bad}"


def test_the_recorded_terminal_session_reads_cleanly() -> None:
    session = (ROOT / "docs/terminal.md").read_text(encoding="utf-8")
    assert "safehaven chat" in session
    assert not problems(session), problems(session)


def test_form_labels_that_ask_take_no_colon() -> None:
    form = Form(question="consent", title="Consent limits", intro="",
                fields=(FormField(name="use_limits", label="What may the recipient do with it?",
                                  value="Only for the meeting"),
                        FormField(name="name", label="Full name", value="Priya Shah")))
    shown = render(form)
    assert "What may the recipient do with it? Only for the meeting" in shown
    assert "Full name: Priya Shah" in shown
    assert not problems(shown)
    assert labelled("Phone") == "Phone:"


def test_plural() -> None:
    assert [plural(1, "file"), plural(3, "download"), plural(2, "match", "matches")] == \
        ["1 file", "3 downloads", "2 matches"]
