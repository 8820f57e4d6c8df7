"""Password hashing with argon2id (argon2-cffi). Hashing is CPU work: it runs off the loop."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 8


class WeakPassword(ValueError):
    pass


def check_strength(password: str) -> None:
    """Refuse passwords an attacker guesses first: too short, or one character repeated."""
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"a password needs at least {MIN_LENGTH} characters")
    if len(set(password)) < 3:
        raise WeakPassword("a password needs more than two different characters")


@dataclass(frozen=True)
class Passwords:
    """argon2id with the library's defaults (RFC 9106 low-memory profile) unless told otherwise."""

    hasher: PasswordHasher = field(default_factory=PasswordHasher)

    def hash_now(self, password: str) -> str:
        return self.hasher.hash(password)

    def verify_now(self, stored: str, password: str) -> bool:
        try:
            return self.hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self.hasher.hash, password)

    async def verify(self, stored: str, password: str) -> bool:
        return await asyncio.to_thread(self.verify_now, stored, password)

    def needs_rehash(self, stored: str) -> bool:
        try:
            return self.hasher.check_needs_rehash(stored)
        except InvalidHashError:
            return True


# Verified against when the username is unknown, so that a miss takes as long as a wrong
# password and timing does not tell which part was wrong.
def dummy_hash(passwords: Passwords) -> str:
    return passwords.hash_now("not-a-real-password-only-for-timing")
