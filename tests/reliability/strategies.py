"""Hostile input for the property-based tests: text with control characters, direction
overrides, NUL bytes, mixed scripts and look-alikes, very long strings, path traversal and
injection attempts, and the answers a confused or malicious sender might give."""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

#: Inputs tried per property, summed over the session and printed at its end
#: (tests/reliability/conftest.py). docs/reliability.md quotes the totals.
TRIED: Counter[str] = Counter()


def tried(name: str) -> None:
    TRIED[name] += 1


#: Other figures the reliability tests measure (printed with the counts above).
FIGURES: dict[str, str] = {}


#: SAFEHAVEN_FUZZ_SCALE=20 multiplies every budget for a deeper run than the suite's.
SCALE = max(1, int(os.environ.get("SAFEHAVEN_FUZZ_SCALE", "1")))


def fuzz_settings(max_examples: int) -> settings:
    """Explicit example budgets, no deadline (CI machines vary), no example database (so
    nothing is written into the repository), reproducible through the printed blob."""
    return settings(max_examples=max_examples * SCALE, deadline=None, database=None,
                    print_blob=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


NASTY = (
    "", " ", "\t", "\n", "\r\n", "\x00", "\x00" * 20, "\x1b[31mred\x1b[0m", "\u202e", "\u200b",
    "\ufeff", "\u2028", "\u0301" * 50, "\U0001f600", "\ud800", "\udc80", "\udcff",
    "../../../../etc/passwd", "..\\..\\..\\Windows\\System32\\cmd.exe", "/dev/zero",
    "C:\\Users\\me\\Julia Smith.pdf", "CON", "aux.txt", "NUL.pdf", ".", "..", "~/.ssh/id_rsa",
    "invoice\u202efdp.exe", "Іван Петренко", "Ρriya Ѕhah", "Ｆｕｌｌｗｉｄｔｈ", "漢字 かな 한글",
    "مرحبا بالعالم", "שלום", "ß" * 300, "%s%n%x%d", "{password}", "{0}{1}", "{reference!r:>99}",
    "'; DROP TABLE transfers; --", "<script>alert(1)</script>", "<!channel> <@U123>",
    "=HYPERLINK(\"http://x\")", "@SUM(1)", "javascript:alert(1)", "${jndi:ldap://x/a}",
    "SH-AAAA-22", "sh-aaaa-22", "cancel", "CANCEL", " back ", "help", "status", "list",
    "received", "call", "confirm", "new", "yes", "no", "1", "0", "-1", "99", "1e9",
    "remove:1", "remove:99", "remove:x", "r1", "r99", "sms", "voice", "portal", "archive",
    "2026-11-24 10:00", "2026-02-30 10:00", "9999-12-31 23:59", "0001-01-01 00:00",
    "2026-11-24T10:00:00+14:00", "2026-11-24 25:61", "24/11/2026 10:00", "tomorrow",
    "+447911123456", "07911 123456", "020 7946 0000 ext 123", "+999 123", "+44" + "9" * 60,
    "priya.shah@nhs.net", "info@nhs.net", "a@b", "@@", "x" * 5000,
)


def long_text() -> st.SearchStrategy[str]:
    return st.builds(lambda part, n: part * n, st.text(min_size=1, max_size=8),
                     st.integers(min_value=200, max_value=20_000))


def hostile_text(*, surrogates: bool = True) -> st.SearchStrategy[str]:
    """Any text a channel could hand the core. Lone surrogates arrive from JSON escapes
    ("\\ud800") and from undecodable bytes in file names (surrogateescape); HTTP forms cannot
    carry them, so ``surrogates=False`` there."""
    nasty = st.sampled_from([n for n in NASTY if surrogates or not any(
        0xD800 <= ord(c) <= 0xDFFF for c in n)])
    pieces = st.one_of(
        st.text(),
        st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x2FF)),
        st.text(alphabet=st.characters(categories=["Cc", "Cf", "Zl", "Zp", "Zs", "Mn"])),
        st.text(alphabet=st.characters(categories=["Lu", "Ll", "Lo", "Nd", "Mn"])),
        nasty,
    )
    if surrogates:
        pieces = st.one_of(pieces, st.text(alphabet=st.characters(categories=["Cs"])))
    joined = st.lists(pieces, max_size=4).map("".join)
    return st.one_of(joined, nasty, long_text())


def file_names() -> st.SearchStrategy[str]:
    """File names with traversal, NUL bytes, mixed scripts, direction overrides and every
    extension that matters to the intake checks."""
    ext = st.sampled_from(["", ".pdf", ".docx", ".xlsm", ".exe", ".txt", ".pdf.exe", ".lnk",
                           ".iso", ".zip", ".sh", ".", ". ", ".PDF", ".\u202etxt"])
    return st.one_of(
        st.builds(lambda a, b: a + b, hostile_text(), ext),
        st.builds(lambda d, a, b: d + a + b,
                  st.sampled_from(["../", "..\\", "/", "C:\\", "\\\\server\\share\\",
                                   "./././", "a/../../", "%2e%2e%2f", "\x00/"]),
                  hostile_text(), ext),
    )


def junk_values() -> st.SearchStrategy[Any]:
    """JSON-ish junk for dictionary answers (channels should send strings; check anyway
    that a string-typed junk dictionary is handled)."""
    return hostile_text()


def answer_values(options: list[str] | None = None) -> st.SearchStrategy[str | dict[str, str]]:
    """Answers: free text, option values and numbers, form dictionaries with junk keys and
    values, and forms with one valid field replaced."""
    words = st.sampled_from(options or ["1"])
    field_names = st.sampled_from(["name", "job_title", "organisation", "email", "phone",
                                   "use_limits", "onward_sharing", "delete_after_use", "value",
                                   "", "__proto__", "sh_q"])
    form = st.dictionaries(st.one_of(field_names, hostile_text()), junk_values(), max_size=8)
    return st.one_of(
        hostile_text(),
        words,
        st.builds(lambda w, pad: pad + w + pad, words, st.sampled_from(["", " ", "\t", "\n"])),
        st.integers(min_value=-5, max_value=60).map(str),
        form,
        st.builds(lambda w: {"value": w}, st.one_of(words, hostile_text())),
    )


def corrupted(valid: str | dict[str, str]) -> st.SearchStrategy[str | dict[str, str]]:
    """A valid answer with hostile text spliced into it (or one form field replaced), so
    the junk gets past length and format checks and reaches the store."""
    def splice(text: str) -> st.SearchStrategy[str]:
        return st.builds(lambda at, junk: text[:at] + junk + text[at:],
                         st.integers(min_value=0, max_value=len(text)), hostile_text())

    if isinstance(valid, str):
        return splice(valid)
    form = dict(valid)
    return st.sampled_from(sorted(form)).flatmap(lambda key: st.one_of(
        splice(form[key]), hostile_text()).map(lambda value: {**form, key: value}))
