"""Archive passwords: strong enough, readable over the phone, spelled back unambiguously."""

from __future__ import annotations

import logging
import math
import re

import pytest

from bot import passwords
from bot.messages import packaging as text
from bot.passwords import PASSWORD_ENTROPY_BITS, generate_password, spell_for_voice

LOOK_ALIKES = set("0O1lI")
SHAPE = re.compile(r"(?:[A-Z][a-z]{2,7}-){5}[2-9]{5}")


def test_entropy_is_computed_from_the_real_scheme_and_reaches_72_bits() -> None:
    words = passwords.load_wordlist()
    expected = passwords.WORD_COUNT * math.log2(len(words)) + passwords.DIGIT_COUNT * math.log2(
        len(passwords.DIGITS)
    )
    assert PASSWORD_ENTROPY_BITS == pytest.approx(expected)
    assert PASSWORD_ENTROPY_BITS >= 72


def test_passwords_are_distinct() -> None:
    generated = [generate_password() for _ in range(2000)]
    assert len(set(generated)) == len(generated)


def test_passwords_use_the_readable_alphabet_and_meet_the_council_policy() -> None:
    for _ in range(500):
        password = generate_password()
        assert SHAPE.fullmatch(password), password
        assert not LOOK_ALIKES & set(password), password
        assert len(password) >= 8
        assert any(ch.isalpha() for ch in password)
        assert any(ch.isdigit() for ch in password)
        assert any(ch.isupper() for ch in password) and any(ch.islower() for ch in password)


def test_word_list_follows_its_rules() -> None:
    words = passwords.load_wordlist()
    assert len(words) == len(set(words))
    nato = {code.lower() for code in text.NATO_ALPHABET.values()}
    spoken = set(text.DIGIT_WORDS.values()) | set(text.SYMBOL_NAMES.values())
    for word in words:
        assert re.fullmatch(r"[a-z]{3,8}", word), word
        assert "l" not in word and word[0] not in "io", word
        assert word not in nato and word not in spoken, word


def _reconstruct(phrases: list[str]) -> str:
    """What a careful listener writes down, using only the phrases."""
    digits = {word: digit for digit, word in text.DIGIT_WORDS.items()}
    symbols = {name: symbol for symbol, name in text.SYMBOL_NAMES.items()}
    word_prefix = text.VOICE_WORD.split("{", 1)[0]
    out = []
    for phrase in phrases:
        if phrase.startswith(word_prefix):
            continue  # the announcement of the whole word; the spelling follows
        if capital := re.fullmatch(r"capital (\w) for [\w-]+", phrase):
            out.append(capital.group(1).upper())
        elif letter := re.fullmatch(r"(\w) for [\w-]+", phrase):
            out.append(letter.group(1))
        elif digit := re.fullmatch(r"number (\w+)", phrase):
            out.append(digits[digit.group(1)])
        else:
            out.append(symbols[phrase])
    return "".join(out)


def test_spell_for_voice_round_trips() -> None:
    for _ in range(50):
        password = generate_password()
        assert _reconstruct(spell_for_voice(password)) == password


def test_spell_for_voice_uses_nato_words_and_names_separators() -> None:
    phrases = spell_for_voice("Cab-42")
    assert phrases == [
        "The word Cab.",
        "capital C for Charlie",
        "a for Alpha",
        "b for Bravo",
        "dash",
        "number four",
        "number two",
    ]


def test_spell_for_voice_refuses_unnameable_characters_without_echoing_them() -> None:
    with pytest.raises(ValueError) as excinfo:
        spell_for_voice("Secret-ü-23")
    assert "Secret" not in str(excinfo.value)


def test_generating_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        password = generate_password()
        spell_for_voice(password)
    assert password not in caplog.text
