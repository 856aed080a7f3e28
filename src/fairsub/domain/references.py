"""Reference numbers customers keep as proof: FS-7K3M-Q9TZ.

Seven random Crockford base32 characters (35 bits) and a Luhn mod 32 check character,
so any single mistyped character is caught before any lookup, and so is a swap of
neighbours, except 0 and Z (Luhn's one blind spot, like 09/90 in card numbers).
Uniqueness is the database's job (a unique column); unguessability comes from `secrets`.
"""

from __future__ import annotations

import secrets

from fairsub.domain.errors import InvalidInput

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_VALUE = {ch: i for i, ch in enumerate(ALPHABET)}
# Crockford's decoding is forgiving of the look-alikes people type.
_ALIASES = str.maketrans({"O": "0", "I": "1", "L": "1", "U": "V"})
PREFIX = "FS-"


def _check_character(payload: str) -> str:
    n = len(ALPHABET)
    total = 0
    factor = 2
    for ch in reversed(payload):
        addend = factor * _VALUE[ch]
        total += addend // n + addend % n
        factor = 1 if factor == 2 else 2
    return ALPHABET[(n - total % n) % n]


def new_reference() -> str:
    payload = "".join(secrets.choice(ALPHABET) for _ in range(7))
    code = payload + _check_character(payload)
    return f"{PREFIX}{code[:4]}-{code[4:]}"


def normalize_reference(text: str) -> str:
    """Parse what a person typed ('fs 7k3m q9tz') into the canonical form, or raise."""
    cleaned = text.strip().upper().replace(" ", "").replace("-", "")
    if len(cleaned) == 10 and cleaned.startswith("FS"):
        cleaned = cleaned[2:]
    cleaned = cleaned.translate(_ALIASES)
    if len(cleaned) != 8 or any(ch not in _VALUE for ch in cleaned):
        raise InvalidInput("A reference looks like FS-7K3M-Q9TZ.")
    if _check_character(cleaned[:7]) != cleaned[7]:
        raise InvalidInput("That reference has a typing mistake in it.")
    return f"{PREFIX}{cleaned[:4]}-{cleaned[4:]}"


def is_valid_reference(text: str) -> bool:
    try:
        normalize_reference(text)
    except InvalidInput:
        return False
    return True
