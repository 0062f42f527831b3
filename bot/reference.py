"""Transfer references such as ``SH-7K3Q-9F``: short, random, and saying nothing about
who or what is inside, so they can go in an email subject and be read over the phone."""

from __future__ import annotations

import re
import secrets

# No 0/O, 1/I/L: a reference is read aloud and typed back.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


def new_reference() -> str:
    chars = "".join(secrets.choice(ALPHABET) for _ in range(6))
    return f"SH-{chars[:4]}-{chars[4:]}"


def normalise_reference(text: str) -> str:
    return text.strip().upper()


_REFERENCE_RE = re.compile(r"^SH-[0-9A-Z]{4}-[0-9A-Z]{2}$")


def is_reference(text: str) -> bool:
    """Whether ``text`` has the shape of a reference (in any case, spaces around it)."""
    return bool(_REFERENCE_RE.match(text.strip().upper()))
