"""Archive passwords that survive being read aloud over the phone.

A password looks like ``Harvest-Cobweb-Tundra-Pocket-Sponge-48265``: five capitalised words
from ``bot/wordlist.txt`` and five digits, joined by dashes. Every part is drawn with
``secrets``. The alphabet avoids look-alikes: the word list has no "l" and no word starting
with "i" or "o" (so no ``l``, ``I`` or ``O`` can appear) and digits are 2-9 (no ``0``/``1``).
Capitalised words plus digits satisfy the usual "upper, lower and number" policies.

Passwords are never logged by this module; callers must not log them either.
"""

from __future__ import annotations

import math
import re
import secrets
from functools import cache
from importlib import resources

from bot.messages import packaging as text

WORD_COUNT = 5
DIGIT_COUNT = 5
DIGITS = "23456789"
SEPARATOR = "-"
MIN_ENTROPY_BITS = 72.0

_WORD_RE = re.compile(r"[a-z]{3,8}")
_FORBIDDEN_LETTERS = frozenset("l")
_FORBIDDEN_INITIALS = frozenset("io")


@cache
def load_wordlist() -> tuple[str, ...]:
    """The word list shipped as package data, validated so a bad edit fails loudly."""
    raw = resources.files("bot").joinpath("wordlist.txt").read_text(encoding="utf-8")
    words: list[str] = []
    seen: set[str] = set()
    for line in raw.splitlines():
        word = line.strip()
        if not word or word.startswith("#"):
            continue
        if (
            not _WORD_RE.fullmatch(word)
            or _FORBIDDEN_LETTERS & set(word)
            or word[0] in _FORBIDDEN_INITIALS
        ):
            raise ValueError(f"wordlist.txt: unusable word {word!r}")
        if word in seen:
            raise ValueError(f"wordlist.txt: duplicate word {word!r}")
        seen.add(word)
        words.append(word)
    return tuple(words)


def _entropy_bits(word_count: int) -> float:
    return WORD_COUNT * math.log2(word_count) + DIGIT_COUNT * math.log2(len(DIGITS))


PASSWORD_ENTROPY_BITS: float = _entropy_bits(len(load_wordlist()))
if PASSWORD_ENTROPY_BITS < MIN_ENTROPY_BITS:  # pragma: no cover - guards edits to the list
    raise RuntimeError(
        f"password scheme gives {PASSWORD_ENTROPY_BITS:.1f} bits, below {MIN_ENTROPY_BITS}"
    )


def generate_password() -> str:
    """A fresh password of ``PASSWORD_ENTROPY_BITS`` bits (at least 72), easy to say aloud."""
    words = load_wordlist()
    parts = [secrets.choice(words).capitalize() for _ in range(WORD_COUNT)]
    parts.append("".join(secrets.choice(DIGITS) for _ in range(DIGIT_COUNT)))
    return SEPARATOR.join(parts)


def spell_for_voice(password: str) -> list[str]:
    """Phrases a voice call reads, one at a time with a pause between them.

    Each run of letters is announced as a word, then spelled in the NATO alphabet
    ("capital H for Hotel", "a for Alpha"); digits are read one by one ("number four") and
    punctuation is named ("dash"). Works for any password made of ASCII letters, digits and
    the symbols in ``SYMBOL_NAMES``; anything else raises ``ValueError`` (without echoing
    the password).
    """
    phrases: list[str] = []
    for run in re.findall(r"[A-Za-z]+|.", password, flags=re.DOTALL):
        if run.isascii() and run.isalpha():
            phrases.append(text.VOICE_WORD.format(word=run))
            for letter in run:
                code = text.NATO_ALPHABET[letter.lower()]
                template = text.VOICE_CAPITAL_LETTER if letter.isupper() else text.VOICE_LETTER
                phrases.append(template.format(letter=letter, code=code))
        elif run in text.DIGIT_WORDS:
            phrases.append(text.VOICE_DIGIT.format(word=text.DIGIT_WORDS[run]))
        elif run in text.SYMBOL_NAMES:
            phrases.append(text.SYMBOL_NAMES[run])
        else:
            raise ValueError("password contains a character the voice script cannot name")
    return phrases
