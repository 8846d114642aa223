"""Password hashing with Argon2id (pwdlib's recommended parameters).

>>> h = hash_password("correct horse")
>>> h.startswith("$argon2id$") and verify_password("correct horse", h)
True
>>> verify_password("wrong", h)
False
"""

from __future__ import annotations

from pwdlib import PasswordHash

_hasher = PasswordHash.recommended()
# Verified when the login name is unknown, so that answering "no such user" takes as
# long as "wrong password" and the timing does not reveal which names exist.
_DUMMY_HASH = _hasher.hash("no such user: a constant to spend the same time")

MIN_LENGTH = 8


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    if password_hash is None:
        _hasher.verify(password, _DUMMY_HASH)
        return False
    return _hasher.verify(password, password_hash)


def password_problem(password: str) -> str | None:
    """Why a new password is refused, or None."""
    if len(password) < MIN_LENGTH:
        return f"password must be at least {MIN_LENGTH} characters"
    if len(password) > 1024:
        return "password must be at most 1024 characters"
    return None
