"""HTTP basic auth for the agent, from a file of `user:sha256:<hex digest of the password>` lines.

Only digests are stored, so the file leaks no password. Checking always hashes and compares
in constant time, also for unknown users, so timing tells nothing about which names exist.
Make a line with: printf '%s' 'the-password' | sha256sum
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from pathlib import Path

_SCHEME = "sha256"
_DIGEST_HEX_LENGTH = 64
_MAX_USERS = 10_000
# Compared against when the user is unknown, so both paths cost the same.
_NO_USER_DIGEST = bytes(32)


class BasicAuthFileError(ValueError):
    """The basic-auth file cannot be used; the message names the file and line."""


class BasicAuth:
    """Credentials the agent accepts; `check(header)` takes the raw Authorization header."""

    def __init__(self, digests: dict[str, bytes]) -> None:
        if not digests:
            raise ValueError("basic auth needs at least one user")
        self._digests = digests

    @classmethod
    def from_file(cls, path: str | Path) -> BasicAuth:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise BasicAuthFileError(f"cannot read basic-auth file {path}: {exc}") from None
        digests: dict[str, bytes] = {}
        for number, raw in enumerate(text.splitlines()[: _MAX_USERS + 1], start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            user, _, rest = line.partition(":")
            scheme, _, digest_hex = rest.partition(":")
            where = f"basic-auth file {path}, line {number}"
            if not user:
                raise BasicAuthFileError(f"{where}: expected user:sha256:<hex digest>, the user is empty")
            if scheme != _SCHEME:
                raise BasicAuthFileError(
                    f"{where}: unsupported hash {scheme!r}; use user:sha256:<hex digest> "
                    "(printf '%s' PASSWORD | sha256sum)"
                )
            if len(digest_hex) != _DIGEST_HEX_LENGTH:
                raise BasicAuthFileError(f"{where}: the sha256 digest must be {_DIGEST_HEX_LENGTH} hex digits")
            try:
                digest = bytes.fromhex(digest_hex)
            except ValueError:
                raise BasicAuthFileError(f"{where}: the sha256 digest is not hexadecimal") from None
            if user in digests:
                raise BasicAuthFileError(f"{where}: user {user!r} appears twice")
            digests[user] = digest
        if not digests:
            raise BasicAuthFileError(f"basic-auth file {path} has no user:sha256:<hex digest> line")
        return cls(digests)

    def check(self, authorization: str | None) -> bool:
        """True when the header carries a known user with the right password."""
        user, password = _decode_basic(authorization)
        expected = self._digests.get(user, _NO_USER_DIGEST) if user is not None else _NO_USER_DIGEST
        given = hashlib.sha256((password or "").encode("utf-8")).digest()
        matches = hmac.compare_digest(given, expected)
        return matches and user is not None and user in self._digests


def _decode_basic(authorization: str | None) -> tuple[str | None, str | None]:
    if not authorization:
        return None, None
    scheme, _, encoded = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None, None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    user, sep, password = decoded.partition(":")
    if not sep:
        return None, None
    return user, password
