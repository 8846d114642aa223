"""Access tokens (signed JWT, short-lived) and refresh tokens (opaque, stored hashed).

The clock is a parameter: expiry is judged against the ``now`` the caller passes,
so a test can step past it without waiting.

>>> from datetime import UTC, datetime, timedelta
>>> t0 = datetime(2026, 1, 1, tzinfo=UTC)
>>> key = "k" * 32
>>> tok = issue_access(AccessClaims(user_id=7, session_id=3, role="staff"), key, now=t0,
...                    ttl=timedelta(minutes=15))
>>> verify_access(tok, key, now=t0 + timedelta(minutes=14)).user_id
7
>>> verify_access(tok, key, now=t0 + timedelta(minutes=16))
Traceback (most recent call last):
...
auth.tokens.TokenExpired: access token expired
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt

ALGORITHM = "HS256"
ISSUER = "xingbei-care"


class TokenError(ValueError):
    """Not a token we issued, or no longer valid; the message is safe to show."""


class TokenExpired(TokenError):
    pass


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: int
    session_id: int
    role: str


def issue_access(claims: AccessClaims, key: str, *, now: datetime, ttl: timedelta) -> str:
    payload = {
        "iss": ISSUER,
        "typ": "access",
        "sub": str(claims.user_id),
        "sid": claims.session_id,
        "role": claims.role,
        "iat": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
    }
    return jwt.encode(payload, key, algorithm=ALGORITHM)


def verify_access(token: str, key: str, *, now: datetime) -> AccessClaims:
    try:
        # Time claims are checked below against the injected clock, not pyjwt's.
        payload = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "require": ["sub", "sid", "exp", "iat", "typ"],
            },
        )
    except jwt.PyJWTError:
        raise TokenError("invalid access token") from None
    if payload.get("typ") != "access":
        raise TokenError("not an access token")
    try:
        exp = int(payload["exp"])
        claims = AccessClaims(int(payload["sub"]), int(payload["sid"]), str(payload["role"]))
    except (KeyError, TypeError, ValueError):
        raise TokenError("invalid access token") from None
    if now.timestamp() >= exp:
        raise TokenExpired("access token expired")
    return claims


def new_refresh_token() -> str:
    """256 random bits: guessing one is hopeless, so a fast hash suffices to store it."""
    return secrets.token_urlsafe(32)


def refresh_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
