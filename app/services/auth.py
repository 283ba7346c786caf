"""Credentials: Argon2 passwords (pwdlib), JWT access tokens (PyJWT), API keys.

An API key looks like ``ntm_<prefix>_<secret>``. The prefix is stored in clear
(unique, indexed) to find the key in one lookup; only the sha256 of the whole
key is stored, compared in constant time. sha256 is right here, unlike for
passwords: the secret has 256 bits of entropy, so there is nothing to
brute-force, and every request can afford it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import anyio
import jwt
from pwdlib import PasswordHash
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.errors import Unauthorized
from app.models import ApiKey, User
from app.models.base import utcnow

JWT_ALGORITHM = "HS256"
API_KEY_PREFIX = "ntm"
LAST_USED_RESOLUTION = timedelta(minutes=5)

_password_hash = PasswordHash.recommended()
# Verified against when the email is unknown, so a wrong email costs the same
# time as a wrong password and does not reveal which emails exist.
_DUMMY_HASH = _password_hash.hash("dummy-password-for-timing")


async def hash_password(password: str) -> str:
    """Argon2id, off the event loop (it is deliberately slow)."""
    return await anyio.to_thread.run_sync(_password_hash.hash, password)


async def verify_password(password: str, password_hash: str | None) -> bool:
    def _verify() -> bool:
        try:
            return _password_hash.verify(password, password_hash or _DUMMY_HASH) and (
                password_hash is not None
            )
        except Exception:
            return False

    return await anyio.to_thread.run_sync(_verify)


def create_access_token(settings: Settings, user: User) -> tuple[str, int]:
    """A signed JWT for ``user`` and its lifetime in seconds."""
    now = datetime.now(UTC)
    lifetime = settings.access_token_expire_minutes * 60
    claims = {
        "sub": user.id,
        "iat": now,
        "nbf": now,
        "exp": now + timedelta(seconds=lifetime),
        "jti": uuid.uuid4().hex,
        "typ": "access",
    }
    return jwt.encode(claims, settings.secret_key, algorithm=JWT_ALGORITHM), lifetime


def decode_access_token(settings: Settings, token: str) -> str:
    """The user id in a valid token; Unauthorized for anything else (bad signature,
    another algorithm, ``none``, expired, malformed, missing claims)."""
    try:
        claims = jwt.decode(
            token,
            settings.secret_key,
            algorithms=[JWT_ALGORITHM],
            options={"require": ["sub", "exp", "iat", "jti"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("The access token has expired", code="token_expired") from None
    except jwt.PyJWTError:
        raise Unauthorized("The credential is not valid", code="invalid_token") from None
    subject = claims.get("sub")
    if not isinstance(subject, str) or claims.get("typ") != "access":
        raise Unauthorized("The credential is not valid", code="invalid_token")
    return subject


@dataclass(frozen=True, slots=True)
class NewApiKey:
    prefix: str
    key: str
    key_hash: str


def generate_api_key() -> NewApiKey:
    prefix = secrets.token_hex(6)
    key = f"{API_KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    return NewApiKey(prefix=prefix, key=key, key_hash=hash_api_key(key))


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def looks_like_api_key(token: str) -> bool:
    return token.startswith(f"{API_KEY_PREFIX}_") and token.count("_") >= 2


async def user_for_api_key(session: AsyncSession, token: str) -> User:
    """The owner of a live API key: one indexed lookup by prefix, a constant-time compare.

    ``last_used_at`` is written at most once per ``LAST_USED_RESOLUTION`` so a
    busy key does not cost a write per request.
    """
    parts = token.split("_", 2)
    if len(parts) != 3 or not parts[1]:
        raise Unauthorized("The credential is not valid", code="invalid_token")
    row = (
        await session.execute(
            select(ApiKey, User)
            .join(User, User.id == ApiKey.user_id)
            .where(ApiKey.prefix == parts[1])
        )
    ).first()
    presented = hash_api_key(token)
    if row is None:
        hmac.compare_digest(presented, presented)
        raise Unauthorized("The credential is not valid", code="invalid_token")
    api_key, user = row
    if not hmac.compare_digest(presented, api_key.key_hash) or api_key.revoked_at is not None:
        raise Unauthorized("The credential is not valid", code="invalid_token")
    now = utcnow()
    if api_key.last_used_at is None or now - api_key.last_used_at >= LAST_USED_RESOLUTION:
        await session.execute(
            update(ApiKey).where(ApiKey.id == api_key.id).values(last_used_at=now)
        )
    return user


async def authenticate_token(session: AsyncSession, settings: Settings, token: str) -> User:
    """The user behind a bearer token (a JWT or an API key)."""
    if looks_like_api_key(token):
        return await user_for_api_key(session, token)
    user_id = decode_access_token(settings, token)
    user = await session.get(User, user_id)
    if user is None:
        raise Unauthorized("The credential is not valid", code="invalid_token")
    return user
