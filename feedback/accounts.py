"""Web app accounts: users with passwords (Argon2id) and browser sessions.

A session is created by signing in with an API key or a user's password. The browser keeps a
random token in a cookie; the database keeps only its SHA-256, so a copy of the table opens no
session. A session's scopes are never copied: they are read from its key or user on every
request, so revoking a key or disabling a user ends its sessions at once.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from feedback.apikeys import normalise_scopes
from feedback.db import utcnow
from feedback.models import ApiKey, WebSession, WebUser

MIN_PASSWORD_LENGTH = 12
USERNAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._@-")
# argon2-cffi's defaults (Argon2id, RFC 9106's second recommended profile: 64 MiB, 3 passes).
_HASHER = PasswordHasher()
# Checked against when no such user exists, so a wrong username costs as long as a wrong password.
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))


class AccountError(ValueError):
    """A user that cannot be created or changed; the message says why."""


@dataclass(frozen=True)
class SessionOwner:
    """Who a live session belongs to: a key or a user, with their current scopes."""

    session_id: int
    csrf_token: str
    name: str
    scopes: frozenset[str]
    api_key_id: int | None
    user_id: int | None
    expires_at: datetime


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def hash_password(password: str) -> str:
    """An Argon2id hash of `password` (salted; parameters stored in the hash)."""
    return _HASHER.hash(password)


def _check_username(username: str) -> str:
    name = username.strip().lower()
    if not name or len(name) > 100 or not set(name) <= USERNAME_CHARS:
        raise AccountError(f"username {username!r}: use 1-100 of a-z, 0-9 and . _ @ -")
    return name


def create_user(session: Session, *, username: str, password: str, scopes: Sequence[str]) -> WebUser:
    """Store a new user (flushes; the caller commits)."""
    name = _check_username(username)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if session.scalar(select(WebUser.id).where(WebUser.username == name)) is not None:
        raise AccountError(f"a user named {name!r} exists; `voc users password {name}` changes its password")
    user = WebUser(username=name, password_hash=hash_password(password), scopes=list(normalise_scopes(scopes)))
    session.add(user)
    session.flush()
    return user


def find_user(session: Session, username: str) -> WebUser:
    user = session.scalar(select(WebUser).where(WebUser.username == username.strip().lower()))
    if user is None:
        raise AccountError(f"no user named {username!r}; `voc users list` shows them")
    return user


def list_users(session: Session) -> Sequence[WebUser]:
    return session.scalars(select(WebUser).order_by(WebUser.id)).all()


def set_password(session: Session, *, username: str, password: str) -> WebUser:
    """Change a user's password and end every session of theirs."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    user = find_user(session, username)
    user.password_hash = hash_password(password)
    session.execute(delete(WebSession).where(WebSession.user_id == user.id))
    session.flush()
    return user


def disable_user(session: Session, username: str) -> WebUser:
    """Stop a user from signing in and end their sessions."""
    user = find_user(session, username)
    if user.disabled_at is None:
        user.disabled_at = utcnow()
    session.execute(delete(WebSession).where(WebSession.user_id == user.id))
    session.flush()
    return user


def authenticate_user(session: Session, *, username: str, password: str) -> WebUser | None:
    """The user whose password this is, or None (unknown, disabled or wrong: one answer)."""
    try:
        name = _check_username(username)
    except AccountError:
        name = None
    user = session.scalar(select(WebUser).where(WebUser.username == name)) if name else None
    try:
        _HASHER.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if user is None or user.disabled_at is not None:
        return None
    if _HASHER.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_sign_in_at = utcnow()
    return user


def start_session(session: Session, *, hours: float, api_key_id: int | None = None,
                  user_id: int | None = None) -> tuple[str, WebSession]:
    """A new session for a key or a user: (the cookie's token, the row). Flushes only."""
    if (api_key_id is None) == (user_id is None):
        raise ValueError("a session belongs to one API key or one user")
    token = secrets.token_urlsafe(32)
    row = WebSession(token_hash=_token_hash(token), api_key_id=api_key_id, user_id=user_id,
                     csrf_token=secrets.token_urlsafe(32), expires_at=utcnow() + timedelta(hours=hours))
    session.add(row)
    session.flush()
    return token, row


def session_owner(session: Session, token: str) -> SessionOwner | None:
    """The live session of a cookie's token with its owner's current scopes, or None (unknown,
    expired, its key revoked or its user disabled)."""
    row = session.scalar(select(WebSession).where(WebSession.token_hash == _token_hash(token)))
    if row is None or row.expires_at <= utcnow():
        return None
    if row.api_key_id is not None:
        key = session.get(ApiKey, row.api_key_id)
        if key is None or key.revoked_at is not None:
            return None
        name, scopes = key.name, key.scopes
    else:
        user = session.get(WebUser, row.user_id)
        if user is None or user.disabled_at is not None:
            return None
        name, scopes = user.username, user.scopes
    return SessionOwner(row.id, row.csrf_token, name, frozenset(scopes or ()), row.api_key_id, row.user_id,
                        row.expires_at)


def end_session(session: Session, token: str) -> None:
    """Sign out: the session's row is deleted, so its cookie opens nothing any more."""
    session.execute(delete(WebSession).where(WebSession.token_hash == _token_hash(token)))


def purge_expired_sessions(session: Session) -> int:
    """Delete expired sessions; returns how many."""
    result = session.execute(delete(WebSession).where(WebSession.expires_at <= utcnow()))
    return int(getattr(result, "rowcount", 0) or 0)
