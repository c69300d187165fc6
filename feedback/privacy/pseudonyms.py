"""Keyed author pseudonyms: stable enough to count distinct authors, impossible to read back."""

from __future__ import annotations

import hashlib
import hmac
import unicodedata

PREFIX = "a_"
HEX_CHARS = 12  # 48 bits: collisions stay negligible for a few hundred thousand authors


def pseudonymize(author: str | None, *, secret: str) -> str | None:
    """Return a stable pseudonym like `a_3f9c2b1d7e4a` for `author`; None or blank gives None.

    The author is normalised first (Unicode NFKC, surrounding whitespace stripped, case folded)
    so that "Ann@Example.com " and "ann@example.com" count as one author. HMAC-SHA256 with a
    secret key means nobody without the key can test guesses ("is this pseudonym alice?").
    """
    if not secret:
        raise ValueError(
            "pseudonym secret is empty; set privacy.pseudonym_secret "
            "(VOC_PRIVACY__PSEUDONYM_SECRET) to a long random string"
        )
    if author is None:
        return None
    normalized = unicodedata.normalize("NFKC", author).strip().casefold()
    if not normalized:
        return None
    digest = hmac.new(secret.encode("utf-8"), normalized.encode("utf-8"), hashlib.sha256)
    return PREFIX + digest.hexdigest()[:HEX_CHARS]
