"""Users: creation (with password rules), sign-in, the admin bootstrap, API keys."""

from __future__ import annotations

import unicodedata

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.errors import Conflict, NotFound, Unauthorized, Unprocessable
from app.log import get_logger
from app.models import ApiKey, Role, User
from app.models.base import utcnow
from app.services import auth

log = get_logger(__name__)
MIN_PASSWORD_LENGTH = 10


def normalise_email(raw: str) -> str:
    """NFC, trimmed, the domain lower-cased (the local part is kept as given)."""
    email = unicodedata.normalize("NFC", raw).strip()
    local, at, domain = email.rpartition("@")
    if not at or not local or "." not in domain or any(c.isspace() for c in email):
        raise Unprocessable(
            f"{raw!r} is not an email address", code="invalid_email", loc=("body", "email")
        )
    return f"{local}@{domain.lower()}"


def check_password(password: str) -> None:
    """At least 10 characters and not all of one kind (letters, digits, …)."""
    classes = sum(
        (
            any(c.islower() for c in password),
            any(c.isupper() for c in password),
            any(c.isdigit() for c in password),
            any(not c.isalnum() for c in password),
        )
    )
    if len(password) < MIN_PASSWORD_LENGTH or classes < 2 or len(set(password)) < 4:
        raise Unprocessable(
            f"The password is too weak: use at least {MIN_PASSWORD_LENGTH} characters mixing "
            "letters with digits, capitals or symbols",
            code="weak_password",
            loc=("body", "password"),
        )


async def create_user(session: AsyncSession, email: str, password: str, role: str) -> User:
    check_password(password)
    user = User(
        email=normalise_email(email), password_hash=await auth.hash_password(password), role=role
    )
    session.add(user)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(
            f"A user with email {user.email} already exists", code="email_taken"
        ) from None
    return user


async def authenticate(session: AsyncSession, email: str, password: str) -> User:
    """The user with these credentials; the same 401 whether the email exists or not."""
    try:
        normalised = normalise_email(email)
    except Unprocessable:
        normalised = email
    user = (
        await session.execute(select(User).where(User.email == normalised))
    ).scalar_one_or_none()
    valid = await auth.verify_password(password, user.password_hash if user else None)
    if user is None or not valid:
        raise Unauthorized("Incorrect email or password", code="invalid_credentials")
    return user


async def ensure_admin(
    sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> User | None:
    """Create the ADMIN_EMAIL admin if missing. Safe when several processes start at once:
    the unique email decides, and the losers find the winner's row."""
    if not settings.admin_email or not settings.admin_password:
        return None
    email = normalise_email(settings.admin_email)
    async with sessions() as session:
        existing = (
            await session.execute(select(User).where(User.email == email))
        ).scalar_one_or_none()
        if existing is not None:
            return existing
        try:
            user = await create_user(session, email, settings.admin_password, Role.ADMIN)
            await session.commit()
        except Conflict:
            await session.rollback()
            return (await session.execute(select(User).where(User.email == email))).scalar_one()
        log.info("admin_created", email=email)
        return user


async def create_api_key(session: AsyncSession, user: User, name: str) -> tuple[ApiKey, str]:
    generated = auth.generate_api_key()
    key = ApiKey(user_id=user.id, name=name.strip(), prefix=generated.prefix,
                 key_hash=generated.key_hash)  # fmt: skip
    session.add(key)
    await session.flush()
    return key, generated.key


async def list_api_keys(session: AsyncSession, user: User) -> list[ApiKey]:
    rows = await session.execute(
        select(ApiKey)
        .where(ApiKey.user_id == user.id, ApiKey.revoked_at.is_(None))
        .order_by(ApiKey.created_at, ApiKey.id)
    )
    return list(rows.scalars())


async def revoke_api_key(session: AsyncSession, user: User, key_id: str) -> None:
    result = await session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.user_id == user.id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFound(f"API key {key_id} not found", code="api_key_not_found")


async def list_users(session: AsyncSession, *, offset: int, limit: int) -> tuple[list[User], int]:
    """Every user, oldest first (admins only: the route checks)."""
    total = (await session.execute(select(func.count()).select_from(User))).scalar_one()
    rows = await session.execute(
        select(User).order_by(User.created_at, User.id).offset(offset).limit(limit)
    )
    return list(rows.scalars()), int(total)


async def change_role(session: AsyncSession, user_id: str, role: str) -> User:
    """Set a user's role; taking it from the last admin is 409 ``last_admin``.

    The admins' rows are locked first (PostgreSQL), so two admins demoting each
    other at once cannot leave none.
    """
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound(f"User {user_id} not found", code="user_not_found")
    if user.role == Role.ADMIN and role != Role.ADMIN:
        admins = await session.execute(
            select(User.id).where(User.role == Role.ADMIN).with_for_update()
        )
        if len(admins.all()) <= 1:
            raise Conflict(
                f"{user.email} is the last admin: make another user an admin first",
                code="last_admin",
            )
    user.role = role
    await session.flush()
    return user
