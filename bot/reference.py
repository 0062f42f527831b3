"""Transfer references such as ``SH-7K3Q-9F``: short, random, and saying nothing about
who or what is inside, so they can go in an email subject and be read over the phone."""

from __future__ import annotations

import secrets

# No 0/O, 1/I/L: a reference is read aloud and typed back.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


def new_reference() -> str:
    chars = "".join(secrets.choice(ALPHABET) for _ in range(6))
    return f"SH-{chars[:4]}-{chars[4:]}"


def normalise_reference(text: str) -> str:
    return text.strip().upper()
