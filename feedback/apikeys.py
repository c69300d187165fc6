"""API keys: `voc_<prefix>_<secret>`, stored as a salted scrypt hash, with scopes.

Scopes: `cx` (customer feedback), `hr` (employee feedback), `bi` (the aggregates export only,
never raw text) and `admin` (everything, including sources and keys). The full key is shown
once, when it is created; the database keeps the public prefix (to find the row) and
`scrypt$n$r$p$salt$hash` of the secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from feedback.db import utcnow
from feedback.models import ApiKey

SCOPES = ("cx", "hr", "bi", "admin")
AUDIENCE_SCOPE = {"customer": "cx", "employee": "hr"}
KEY_PATTERN = re.compile(r"^voc_([a-z0-9]{8})_([A-Za-z0-9_-]{20,})$")
# scrypt cost: ~30 ms and 16 MiB per hash. Keys are random (190 bits), so this guards a leaked
# table against offline guessing with a wide margin; the API caches successful checks in memory.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


class ApiKeyError(ValueError):
    """A key that cannot be created or found; the message says why."""


@dataclass(frozen=True)
class NewKey:
    """A freshly created key: `secret_key` is shown once and never stored."""

    id: int
    name: str
    prefix: str
    scopes: tuple[str, ...]
    secret_key: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_secret(secret: str, *, salt: bytes | None = None) -> str:
    """`scrypt$n$r$p$salt$hash` of a key's secret part."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_secret(secret: str, stored: str) -> bool:
    """Whether `secret` matches a stored `hash_secret` value (constant-time comparison)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    computed = hashlib.scrypt(secret.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p),
                              dklen=len(_unb64(digest)))
    return hmac.compare_digest(computed, _unb64(digest))


def parse_key(key: str) -> tuple[str, str] | None:
    """(prefix, secret) of a well-formed key, else None."""
    match = KEY_PATTERN.match(key.strip())
    return (match.group(1), match.group(2)) if match else None


def normalise_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    wanted = tuple(dict.fromkeys(s.strip().lower() for s in scopes if s.strip()))
    unknown = [s for s in wanted if s not in SCOPES]
    if unknown:
        raise ApiKeyError(f"unknown scope(s) {', '.join(unknown)}; scopes: {', '.join(SCOPES)}")
    if not wanted:
        raise ApiKeyError(f"a key needs at least one scope: {', '.join(SCOPES)}")
    return wanted


def create_key(session: Session, *, name: str, scopes: Sequence[str]) -> NewKey:
    """Store a new key (flushes; the caller commits) and return it with its secret, shown once."""
    scopes = normalise_scopes(scopes)
    for _ in range(10):
        prefix = secrets.token_hex(4)
        if session.scalar(select(ApiKey.id).where(ApiKey.prefix == prefix)) is None:
            break
    else:  # pragma: no cover - 4 billion prefixes
        raise ApiKeyError("could not find a free key prefix")
    secret = secrets.token_urlsafe(32)
    row = ApiKey(name=name, prefix=prefix, key_hash=hash_secret(secret), scopes=list(scopes))
    session.add(row)
    session.flush()
    return NewKey(row.id, name, prefix, scopes, f"voc_{prefix}_{secret}")


def list_keys(session: Session, *, include_revoked: bool = True) -> Sequence[ApiKey]:
    """Every key, oldest first (hashes included; never show them)."""
    stmt = select(ApiKey).order_by(ApiKey.id)
    if not include_revoked:
        stmt = stmt.where(ApiKey.revoked_at.is_(None))
    return session.scalars(stmt).all()


def find_key(session: Session, ref: str) -> ApiKey:
    """A key by its prefix, its id, or the full key."""
    parsed = parse_key(ref)
    prefix = parsed[0] if parsed else ref.strip()
    row = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if row is None and ref.strip().isdigit():
        row = session.get(ApiKey, int(ref.strip()))
    if row is None:
        raise ApiKeyError(f"no API key with prefix or id {ref!r}; `voc keys list` shows them")
    return row


def revoke_key(session: Session, ref: str) -> ApiKey:
    """Revoke a key now (it stops working on the next request); flushes only."""
    row = find_key(session, ref)
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.flush()
    return row
