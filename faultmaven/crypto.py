"""Encryption of stored log payloads: AES-256-GCM in a small versioned envelope, with key rotation.

Envelope layout (all lengths in bytes)::

    version (1) = 0x01 | key id length (1) | key id (ASCII) | nonce (12) | ciphertext + 16-byte tag

The header (version, key id length, key id) is the associated data, so a ciphertext cannot be moved under
another key id or version without failing authentication. Keys come from ``Settings.encryption_keys``
(comma-separated ``key_id:base64key`` pairs of 32-byte keys): the first encrypts, every one decrypts, so a
new key is rolled out by putting it first and the old one stays readable until it is removed.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.errors import FaultMavenError
from faultmaven.settings import Settings

log = logging.getLogger(__name__)

ENVELOPE_VERSION = 1
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
KEY_FILE_NAME = "encryption.key"
_KEY_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class EncryptionConfigError(FaultMavenError):
    """The configured keys cannot be used. The message names the faulty entry, never key material."""

    code = "encryption_misconfigured"
    http_status = 500


class DecryptionError(FaultMavenError):
    """A stored payload cannot be decrypted: unknown key id, wrong key, tampered or truncated data."""

    code = "payload_unreadable"
    http_status = 500


@dataclass(frozen=True, slots=True)
class _Key:
    key_id: str
    aead: AESGCM


class KeyRing:
    """The keys in force. The first one encrypts; all of them decrypt."""

    def __init__(self, keys: list[tuple[str, bytes]]) -> None:
        if not keys:
            raise EncryptionConfigError("No encryption key is configured.")
        seen: set[str] = set()
        ring: list[_Key] = []
        for position, (key_id, key) in enumerate(keys, start=1):
            if not _KEY_ID_RE.match(key_id):
                raise EncryptionConfigError(
                    f"Encryption key #{position}: the key id must be 1-64 characters of letters, digits, "
                    "'.', '_' or '-'."
                )
            if key_id in seen:
                raise EncryptionConfigError(f"Encryption key #{position}: key id {key_id!r} appears twice.")
            if len(key) != KEY_BYTES:
                raise EncryptionConfigError(
                    f"Encryption key {key_id!r} is {len(key)} bytes; AES-256 needs exactly {KEY_BYTES}."
                )
            seen.add(key_id)
            ring.append(_Key(key_id=key_id, aead=AESGCM(key)))
        self._keys = ring
        self._by_id = {key.key_id: key for key in ring}

    @classmethod
    def from_spec(cls, spec: str) -> KeyRing:
        """Parse ``key_id:base64key[,key_id:base64key...]``. Errors name the entry, never the key."""
        pairs: list[tuple[str, bytes]] = []
        entries = [entry.strip() for entry in spec.split(",")]
        for position, entry in enumerate(entries, start=1):
            if not entry:
                raise EncryptionConfigError(f"Encryption key #{position} is empty (stray comma?).")
            key_id, sep, encoded = entry.partition(":")
            if not sep:
                raise EncryptionConfigError(
                    f"Encryption key #{position} has no ':'; expected 'key_id:base64key'."
                )
            key_id = key_id.strip()
            try:
                key = base64.b64decode(encoded.strip(), validate=True)
            except (binascii.Error, ValueError):
                raise EncryptionConfigError(
                    f"Encryption key #{position} ({key_id!r}) is not valid base64."
                ) from None
            pairs.append((key_id, key))
        return cls(pairs)

    @property
    def primary_key_id(self) -> str:
        return self._keys[0].key_id

    @property
    def key_ids(self) -> list[str]:
        return [key.key_id for key in self._keys]

    def encrypt(self, plaintext: bytes) -> bytes:
        key = self._keys[0]
        header = _header(key.key_id)
        nonce = secrets.token_bytes(NONCE_BYTES)
        return header + nonce + key.aead.encrypt(nonce, plaintext, header)

    def decrypt(self, envelope: bytes) -> bytes:
        if len(envelope) < 2:
            raise DecryptionError("The stored payload is truncated.", detail=f"{len(envelope)} bytes")
        version = envelope[0]
        if version != ENVELOPE_VERSION:
            raise DecryptionError(
                "The stored payload uses an unknown envelope format.", detail=f"version byte {version}"
            )
        id_len = envelope[1]
        body_start = 2 + id_len
        if id_len == 0 or len(envelope) < body_start + NONCE_BYTES + TAG_BYTES:
            raise DecryptionError("The stored payload is truncated.", detail=f"{len(envelope)} bytes")
        try:
            key_id = envelope[2:body_start].decode("ascii")
        except UnicodeDecodeError:
            raise DecryptionError("The stored payload has a corrupt header.") from None
        key = self._by_id.get(key_id)
        if key is None:
            raise DecryptionError(
                f"The stored payload was encrypted with key {key_id!r}, which is not configured.",
                detail=f"configured: {', '.join(self.key_ids)}",
            )
        nonce = envelope[body_start : body_start + NONCE_BYTES]
        try:
            return key.aead.decrypt(nonce, envelope[body_start + NONCE_BYTES :], envelope[:body_start])
        except InvalidTag:
            raise DecryptionError(
                f"The stored payload failed authentication under key {key_id!r}: "
                "it was tampered with or the key is wrong."
            ) from None


def _header(key_id: str) -> bytes:
    raw = key_id.encode("ascii")
    return bytes([ENVELOPE_VERSION, len(raw)]) + raw


def generate_key_spec(key_id: str) -> str:
    """A fresh ``key_id:base64key`` entry (for operators rotating keys, and the embedded key file)."""
    return f"{key_id}:{base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode('ascii')}"


def load_or_create_key_file(path: Path) -> KeyRing:
    """The embedded-mode key ring kept in a 0600 file, generated on first use.

    Creation is atomic (written to a private temporary file, then hard-linked into place), so two
    processes starting together end up with the same key.
    """
    if not path.exists():
        try:
            _create_key_file(path)
        except OSError as exc:
            raise EncryptionConfigError(
                f"Cannot create the encryption key file {path}: {exc.strerror or type(exc).__name__}.",
                detail=type(exc).__name__,
            ) from None
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError as exc:
        raise EncryptionConfigError(
            f"Cannot read the encryption key file {path}: {exc.strerror or type(exc).__name__}.",
            detail=type(exc).__name__,
        ) from None
    if mode & 0o077:
        log.warning(
            "encryption key file is readable by other users; chmod 600 it",
            extra={"key_file": str(path), "mode": oct(mode)},
        )
    try:
        return KeyRing.from_spec(path.read_text(encoding="ascii").strip())
    except EncryptionConfigError as exc:
        raise EncryptionConfigError(f"Key file {path}: {exc.user_message}") from None
    except (UnicodeDecodeError, OSError) as exc:
        raise EncryptionConfigError(f"Key file {path} cannot be read.", detail=type(exc).__name__) from None


def _create_key_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    spec = generate_key_spec(f"local-{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(spec + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
            log.warning(
                "no encryption key configured: generated one for stored payloads",
                extra={"key_file": str(path)},
            )
        except FileExistsError:
            pass  # another process won the race; use its key
    finally:
        tmp.unlink(missing_ok=True)


def keyring_from_settings(settings: Settings) -> KeyRing:
    """Configured keys if any; in embedded mode (no PostgreSQL) a generated key under ``data_dir``.

    A shared PostgreSQL history is written by several replicas, so a per-machine generated key would make
    payloads unreadable elsewhere: there the keys must be configured.
    """
    spec = settings.encryption_keys.get_secret_value().strip() if settings.encryption_keys else ""
    if spec:
        return KeyRing.from_spec(spec)
    if settings.postgres_dsn is not None:
        raise EncryptionConfigError(
            "FAULTMAVEN_ENCRYPTION_KEYS must be set when FAULTMAVEN_POSTGRES_DSN is: every replica needs "
            "the same keys to read stored payloads."
        )
    return load_or_create_key_file(settings.data_dir / KEY_FILE_NAME)
