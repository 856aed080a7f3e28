"""Password hashing with argon2id at OWASP's recommended minimum (m=19 MiB, t=2, p=1)."""

from __future__ import annotations

from argon2 import PasswordHasher as _Argon2
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError


class Argon2Hasher:
    def __init__(self, memory_kib: int = 19 * 1024, time_cost: int = 2, parallelism: int = 1):
        self._argon = _Argon2(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID
        )

    def hash(self, password: str) -> str:
        return self._argon.hash(password)

    def verify(self, stored: str, password: str) -> bool:
        try:
            return self._argon.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        return self._argon.check_needs_rehash(stored)
