"""Encryption at rest: AES-256-GCM with a key id beside every ciphertext, so keys can rotate.

A sealed value is one BSON/JSON-friendly string::

    v1.<kid>.<nonce>.<ciphertext>      kid: first 8 hex of SHA-256(key)
                                       nonce, ciphertext: unpadded base64url

Every value is sealed with a *context* (the GCM associated data): the record it
belongs to, e.g. ``conversations/<hashed sender>/events.3``. A ciphertext copied
to another user, another field or another position fails to open, exactly as an
edited one does. In the banking database the context of a field is
``field_context(collection, _id, dotted path)``; that rule is what lets
``scripts/reencrypt.py`` re-seal every field without knowing what it holds.

Keys come from ENCRYPTION_KEY (the newest key: 64 hex characters, 32 bytes;
seals and opens) and ENCRYPTION_OLD_KEYS (comma-separated; open only). In
development a missing key becomes a throwaway key for this process.

    CryptoError                    nothing here ever carries key material or plaintext
    ├── MalformedCiphertext        not a sealed value at all
    ├── UnknownKey                 sealed with a key that is not configured (.kid)
    └── TamperedData               authentication failed: edited, moved, or a wrong key

    ConfigError (banking.errors)   a missing, malformed or weak key or secret
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import re
import secrets
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from banking.config import (
    DEVELOPMENT_SALT,
    WHATSAPP_VARIABLES,
    encryption_key_from_env,
    environment_from_env,
    mongodb_uri_from_env,
    old_encryption_keys_from_env,
    user_id_salt_from_env,
    whatsapp_settings_from_env,
)
from banking.errors import ConfigError

__all__ = [
    "CryptoError", "Keyring", "MalformedCiphertext", "TamperedData", "UnknownKey", "field_context",
    "is_sealed", "key_id", "parse_key", "production_secret_problems", "require_production_secrets",
    "require_user_id_salt", "sealed_fields", "sealed_kid", "secret_weakness",
]

logger = logging.getLogger(__name__)

VERSION = "v1"
KEY_BYTES = 32
NONCE_BYTES = 12
MIN_SALT_LENGTH = 16
WHATSAPP_SECRETS = ("app_secret", "api_token", "verify_token")  # keys of WHATSAPP_VARIABLES
_SEALED = re.compile(r"^v1\.([0-9a-f]{8})\.([A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]{22,})$")
_HEX_KEY = re.compile(r"^[0-9a-fA-F]{64}$")
_PLACEHOLDERS = frozenset({
    "changeme", "change-me", "change_me", "default", "example", "password", "placeholder", "salt",
    "secret", "test", "token", "todo", "xxx",
})

_throwaway_lock = threading.Lock()
_throwaway_key: bytes | None = None


class CryptoError(Exception):
    """A sealed value could not be opened; the message names why, never what it held."""


class MalformedCiphertext(CryptoError):
    """The value is not a v1 sealed string (plaintext where ciphertext belongs, or truncated)."""


class UnknownKey(CryptoError):
    """Sealed under a key id that neither ENCRYPTION_KEY nor ENCRYPTION_OLD_KEYS provides."""

    def __init__(self, kid: str) -> None:
        super().__init__(f"no configured key has id {kid}; add the old key to ENCRYPTION_OLD_KEYS")
        self.kid = kid


class TamperedData(CryptoError):
    """GCM authentication failed: the ciphertext was edited, moved to another record, or the key is wrong."""


def key_id(key: bytes) -> str:
    """A public name for a key: 8 hex of its SHA-256, enough to pick a key, useless for finding it."""
    return hashlib.sha256(key).hexdigest()[:8]


def parse_key(text: str, name: str = "ENCRYPTION_KEY") -> bytes:
    """32 key bytes from 64 hex characters; the error names the variable, never the value."""
    cleaned = text.strip()
    if not _HEX_KEY.match(cleaned):
        raise ConfigError(f"{name} must be 64 hexadecimal characters (32 bytes); got {len(cleaned)} characters")
    return bytes.fromhex(cleaned)


def field_context(collection: str, document_id: Any, path: str) -> str:
    """The associated data of a sealed field: which collection, record and field it belongs to."""
    return f"{collection}/{document_id}/{path}"


def is_sealed(value: Any) -> bool:
    """True for a string shaped like a v1 sealed value."""
    return isinstance(value, str) and _SEALED.match(value) is not None


def sealed_kid(token: str) -> str:
    """The key id a sealed value names."""
    return _parse(token)[0]


def sealed_fields(document: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """Every (dotted path, sealed value) in a document, lists included ("events.3"); `_id` is skipped."""
    for name, value in document.items():
        if not prefix and name == "_id":
            continue
        yield from _sealed_in(value, f"{prefix}{name}")


def _sealed_in(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if is_sealed(value):
        yield path, value
    elif isinstance(value, Mapping):
        yield from sealed_fields(value, f"{path}.")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _sealed_in(item, f"{path}.{index}")


class Keyring:
    """The newest key (seals) and older keys (open only), addressed by key id."""

    def __init__(self, current: bytes, old: Sequence[bytes] = ()) -> None:
        keys = [current, *(key for key in old if key != current)]
        ciphers: dict[str, AESGCM] = {}
        for key in keys:
            if len(key) != KEY_BYTES:
                raise ConfigError(f"an encryption key must be {KEY_BYTES} bytes, not {len(key)}")
            kid = key_id(key)
            if kid in ciphers:
                raise ConfigError(f"two configured keys share the key id {kid}; drop the duplicate")
            ciphers[kid] = AESGCM(key)
        self._ciphers = ciphers
        self.current_kid = key_id(current)

    def __repr__(self) -> str:
        return f"Keyring(current_kid={self.current_kid!r}, kids={self.kids!r})"

    @property
    def kids(self) -> tuple[str, ...]:
        """Every key id this keyring can open, newest first."""
        return tuple(self._ciphers)

    @classmethod
    def generate(cls) -> Keyring:
        """A keyring with a fresh random key (tests, throwaway development keys)."""
        return cls(secrets.token_bytes(KEY_BYTES))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Keyring:
        """ENCRYPTION_KEY plus ENCRYPTION_OLD_KEYS; production refuses a missing or weak key."""
        production = environment_from_env(environ) == "production"
        old = [parse_key(part, f"ENCRYPTION_OLD_KEYS entry {index}")
               for index, part in enumerate(_split(old_encryption_keys_from_env(environ)), start=1)]
        raw = encryption_key_from_env(environ)
        if not raw:
            if production:
                raise ConfigError("ENCRYPTION_KEY is missing; production needs 64 hexadecimal characters "
                                  "(python -c 'import secrets; print(secrets.token_hex(32))')")
            return cls(_process_throwaway_key(), old)
        current = parse_key(raw)
        weakness = _key_weakness(current)
        if weakness and production:
            raise ConfigError(f"ENCRYPTION_KEY {weakness}; generate a random one")
        if weakness:
            logger.warning("ENCRYPTION_KEY %s; never use it outside development", weakness)
        return cls(current, old)

    # ------------------------------------------------------------- sealing

    def encrypt(self, plaintext: bytes, context: str) -> str:
        """Seal bytes under the newest key, bound to `context`, with a fresh random nonce."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        ciphertext = self._ciphers[self.current_kid].encrypt(
            nonce, plaintext, _associated_data(self.current_kid, context))
        return f"{VERSION}.{self.current_kid}.{_b64(nonce)}.{_b64(ciphertext)}"

    def decrypt(self, token: str, context: str) -> bytes:
        """Open a sealed value that was sealed with this same `context`."""
        kid, nonce, ciphertext = _parse(token)
        cipher = self._ciphers.get(kid)
        if cipher is None:
            raise UnknownKey(kid)
        try:
            return cipher.decrypt(nonce, ciphertext, _associated_data(kid, context))
        except InvalidTag:
            raise TamperedData(f"sealed value (key {kid}) failed authentication: it was edited, moved to "
                               "another record, or the key is wrong") from None

    def encrypt_text(self, text: str, context: str) -> str:
        return self.encrypt(text.encode(), context)

    def decrypt_text(self, token: str, context: str) -> str:
        return self.decrypt(token, context).decode()

    def encrypt_json(self, value: Any, context: str) -> str:
        return self.encrypt(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode(), context)

    def decrypt_json(self, token: str, context: str) -> Any:
        return json.loads(self.decrypt(token, context))

    def is_current(self, token: str) -> bool:
        """True when the value is already sealed under the newest key."""
        return sealed_kid(token) == self.current_kid

    def reencrypt(self, token: str, context: str) -> str:
        """The value sealed under the newest key; a value already there is returned unchanged."""
        if self.is_current(token):
            return token
        return self.encrypt(self.decrypt(token, context), context)


# ------------------------------------------------------------------ production secrets


def production_secret_problems(environ: Mapping[str, str] = os.environ) -> list[str]:
    """Every missing, malformed, default or weak secret, one phrase each; values are never quoted."""
    problems: list[str] = []
    raw_key = encryption_key_from_env(environ)
    if not raw_key:
        problems.append("ENCRYPTION_KEY is missing")
    else:
        try:
            weakness = _key_weakness(parse_key(raw_key))
        except ConfigError as error:
            problems.append(str(error))
        else:
            if weakness:
                problems.append(f"ENCRYPTION_KEY {weakness}")
    for index, part in enumerate(_split(old_encryption_keys_from_env(environ)), start=1):
        try:
            parse_key(part, f"ENCRYPTION_OLD_KEYS entry {index}")
        except ConfigError as error:
            problems.append(str(error))
    salt = user_id_salt_from_env(environ)
    if not salt:
        problems.append("USER_ID_SALT is missing")
    elif salt == DEVELOPMENT_SALT or _is_placeholder(salt):
        problems.append("USER_ID_SALT is a default value")
    elif len(salt) < MIN_SALT_LENGTH:
        problems.append(f"USER_ID_SALT is shorter than {MIN_SALT_LENGTH} characters")
    whatsapp = whatsapp_settings_from_env(environ)
    for key in WHATSAPP_SECRETS:
        name, value = WHATSAPP_VARIABLES[key], whatsapp[key]
        if not value:
            problems.append(f"{name} is missing")
        elif _is_placeholder(value):
            problems.append(f"{name} is a placeholder value")
    return problems


def require_production_secrets(environ: Mapping[str, str] = os.environ) -> None:
    """With ENVIRONMENT=production, refuse to start unless every secret is present and real.

    In any environment, records that persist need a real salt (``require_user_id_salt``):
    every start-up path calls this function, so that rule holds wherever something starts.
    """
    if environment_from_env(environ) == "production":
        problems = production_secret_problems(environ)
        if problems:
            raise ConfigError("refusing to start in production: " + "; ".join(problems))
    require_user_id_salt(environ)


def require_user_id_salt(environ: Mapping[str, str] = os.environ, mongodb_uri: str | None = None) -> None:
    """Refuse a missing or development USER_ID_SALT whenever records persist, in any environment.

    Every record is keyed by ``user_key(phone, USER_ID_SALT)``: under the published
    development salt anyone can hash a phone number and find its records, and a salt
    set later would orphan them. Records persist when MONGODB_URI (or ``mongodb_uri``,
    e.g. endpoints.yml's tracker store url) is set; in memory the development salt is
    still accepted, with a warning where it is used. The URI is never quoted.
    """
    if not ((mongodb_uri or "").strip() or mongodb_uri_from_env(environ)):
        return
    salt = user_id_salt_from_env(environ)
    if salt and salt != DEVELOPMENT_SALT:
        return
    state = "unset" if not salt else "the development salt"
    raise ConfigError(f"refusing to start: USER_ID_SALT is {state}, but records are kept in MongoDB "
                      "(MONGODB_URI); set USER_ID_SALT to a long random value (python -c 'import secrets; "
                      "print(secrets.token_hex(32))') and keep it for as long as the data")


# ------------------------------------------------------------------ helpers


def _process_throwaway_key() -> bytes:
    """One random key per development process, announced once (by key id only)."""
    global _throwaway_key
    with _throwaway_lock:
        if _throwaway_key is None:
            _throwaway_key = secrets.token_bytes(KEY_BYTES)
            logger.warning(
                "ENCRYPTION_KEY is unset: encrypting with a throwaway key (id %s) for this process only; "
                "anything it encrypts is unreadable after a restart. Set ENCRYPTION_KEY to 64 hex characters "
                "to keep data.", key_id(_throwaway_key))
        return _throwaway_key


def _key_weakness(key: bytes) -> str | None:
    """Why a key is obviously not random (a default, a pattern), or None."""
    if len(set(key)) == 1:
        return "is a single repeated byte (a default or placeholder key)"
    for period in (2, 4, 8, 16):
        if key == key[:period] * (len(key) // period):
            return "repeats a short pattern (a default or example key)"
    steps = {(b - a) % 256 for a, b in zip(key, key[1:], strict=False)}
    if len(steps) == 1:
        return "is a counting sequence (an example key)"
    if len(set(key)) < 12:
        return "has too few distinct bytes to be random"
    return None


def _is_placeholder(value: str) -> bool:
    lowered = value.strip().lower()
    return (lowered in _PLACEHOLDERS or lowered.startswith(("your-", "your_", "<", "replace"))
            or lowered.startswith("changeme"))


def _split(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",") if part.strip()]


def _associated_data(kid: str, context: str) -> bytes:
    if not context:
        raise ValueError("a non-empty context is required: it binds the ciphertext to its record")
    return f"{VERSION}|{kid}|{context}".encode()


def _parse(token: str) -> tuple[str, bytes, bytes]:
    match = _SEALED.match(token) if isinstance(token, str) else None
    if match is None:
        raise MalformedCiphertext("value is not a v1 sealed string")
    kid, nonce_text, ciphertext_text = match.groups()
    try:
        nonce, ciphertext = _unb64(nonce_text), _unb64(ciphertext_text)
    except ValueError:
        raise MalformedCiphertext("sealed value has invalid base64") from None
    if _b64(nonce) != nonce_text or _b64(ciphertext) != ciphertext_text:
        raise MalformedCiphertext("sealed value is not in canonical base64")  # one value, one spelling
    return kid, nonce, ciphertext


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def secret_weakness(value: str, min_length: int) -> str | None:
    """Why a shared secret is unfit for production ("is a placeholder value", ...), or None."""
    cleaned = value.strip()
    if not cleaned:
        return "is missing"
    if cleaned == DEVELOPMENT_SALT or _is_placeholder(cleaned):
        return "is a placeholder value"
    if len(cleaned) < min_length:
        return f"is shorter than {min_length} characters"
    return None
