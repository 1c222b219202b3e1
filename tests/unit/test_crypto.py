"""AES-256-GCM envelopes for stored log payloads: round trip, rotation, tampering, configuration errors."""

from __future__ import annotations

import base64
import concurrent.futures
import logging
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from faultmaven.crypto import (
    ENVELOPE_VERSION,
    NONCE_BYTES,
    DecryptionError,
    EncryptionConfigError,
    KeyRing,
    generate_key_spec,
    keyring_from_settings,
    load_or_create_key_file,
)
from faultmaven.settings import Settings

KEY_A = bytes(range(32))
KEY_B = bytes(range(100, 132))
SPEC_A = f"2026-a:{base64.b64encode(KEY_A).decode()}"
SPEC_B = f"2026-b:{base64.b64encode(KEY_B).decode()}"
LOG_LINES = (
    b"2026-11-23T23:01:07.114Z ERROR payments-api db pool exhausted (50/50) user=alice@example.com\n"
    b"2026-11-23T23:01:07.120Z WARN  payments-api retrying charge id=ch_3Nq8 attempt=2\n"
)


def test_round_trip_and_envelope_layout() -> None:
    ring = KeyRing.from_spec(SPEC_A)
    envelope = ring.encrypt(LOG_LINES)
    assert envelope[0] == ENVELOPE_VERSION
    assert envelope[1] == len(b"2026-a")
    assert envelope[2:8] == b"2026-a"
    assert LOG_LINES not in envelope
    assert len(envelope) == 2 + 6 + NONCE_BYTES + len(LOG_LINES) + 16
    assert ring.decrypt(envelope) == LOG_LINES


def test_each_encryption_uses_a_fresh_nonce() -> None:
    ring = KeyRing.from_spec(SPEC_A)
    first, second = ring.encrypt(LOG_LINES), ring.encrypt(LOG_LINES)
    assert first[8 : 8 + NONCE_BYTES] != second[8 : 8 + NONCE_BYTES]
    assert first != second


def test_rotation_old_ciphertext_still_decrypts_and_new_key_encrypts() -> None:
    old_ring = KeyRing.from_spec(SPEC_A)
    old_envelope = old_ring.encrypt(LOG_LINES)
    rotated = KeyRing.from_spec(f"{SPEC_B}, {SPEC_A}")
    assert rotated.primary_key_id == "2026-b"
    assert rotated.key_ids == ["2026-b", "2026-a"]
    assert rotated.decrypt(old_envelope) == LOG_LINES
    new_envelope = rotated.encrypt(LOG_LINES)
    assert new_envelope[2:8] == b"2026-b"
    with pytest.raises(DecryptionError, match=r"2026-b.*not configured"):
        old_ring.decrypt(new_envelope)


@pytest.mark.parametrize("position", [0, 1, 5, 2 + 6, 2 + 6 + NONCE_BYTES, -1])
def test_any_flipped_byte_is_detected(position: int) -> None:
    ring = KeyRing.from_spec(SPEC_A)
    envelope = bytearray(ring.encrypt(LOG_LINES))
    envelope[position] ^= 0x01
    with pytest.raises(DecryptionError):
        ring.decrypt(bytes(envelope))


def test_tampered_ciphertext_message_is_clear() -> None:
    ring = KeyRing.from_spec(SPEC_A)
    envelope = bytearray(ring.encrypt(LOG_LINES))
    envelope[30] ^= 0xFF
    with pytest.raises(DecryptionError, match="tampered with or the key is wrong"):
        ring.decrypt(bytes(envelope))


def test_wrong_key_under_the_same_id_fails_authentication() -> None:
    envelope = KeyRing.from_spec(SPEC_A).encrypt(LOG_LINES)
    impostor = KeyRing([("2026-a", KEY_B)])
    with pytest.raises(DecryptionError, match="failed authentication under key '2026-a'"):
        impostor.decrypt(envelope)


def test_unknown_key_id_is_named() -> None:
    envelope = KeyRing.from_spec(SPEC_B).encrypt(LOG_LINES)
    with pytest.raises(DecryptionError, match="'2026-b', which is not configured"):
        KeyRing.from_spec(SPEC_A).decrypt(envelope)


@pytest.mark.parametrize(
    "envelope", [b"", b"\x01", b"\x01\x06abc", b"\x01\x00" + bytes(40), b"\x02\x01a" + bytes(40)]
)
def test_truncated_or_foreign_envelopes_are_rejected(envelope: bytes) -> None:
    with pytest.raises(DecryptionError):
        KeyRing.from_spec(SPEC_A).decrypt(envelope)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "#1 is empty"),
        (f"{SPEC_A},", "#2 is empty"),
        ("nokeyhere", "#1 has no ':'"),
        ("k1:not*base64", "#1 \\('k1'\\) is not valid base64"),
        (f"k1:{base64.b64encode(bytes(16)).decode()}", "'k1' is 16 bytes"),
        (f"bad id:{base64.b64encode(KEY_A).decode()}", "#1: the key id"),
        (f"{SPEC_A},{SPEC_A}", "appears twice"),
    ],
)
def test_bad_key_specs_name_the_entry(spec: str, message: str) -> None:
    with pytest.raises(EncryptionConfigError, match=message) as info:
        KeyRing.from_spec(spec)
    assert base64.b64encode(KEY_A).decode() not in info.value.user_message


def test_generated_spec_parses() -> None:
    ring = KeyRing.from_spec(generate_key_spec("ops-2027"))
    assert ring.primary_key_id == "ops-2027"
    assert ring.decrypt(ring.encrypt(b"x")) == b"x"


def test_key_file_created_0600_reused_and_logged_without_key(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "data" / "encryption.key"
    with caplog.at_level(logging.WARNING, logger="faultmaven.crypto"):
        first = load_or_create_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key_b64 = path.read_text().strip().split(":", 1)[1]
    assert any("generated" in record.getMessage() for record in caplog.records)
    assert all(
        key_b64 not in record.getMessage() and key_b64 not in str(record.__dict__)
        for record in caplog.records
    )
    envelope = first.encrypt(LOG_LINES)
    second = load_or_create_key_file(path)
    assert second.primary_key_id == first.primary_key_id
    assert second.decrypt(envelope) == LOG_LINES
    assert [name for name in os.listdir(path.parent) if name != "encryption.key"] == []


def test_corrupt_key_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "encryption.key"
    path.write_text("local:short\n")
    with pytest.raises(EncryptionConfigError, match=r"Key file .*encryption\.key"):
        load_or_create_key_file(path)


def test_settings_keys_win_and_postgres_requires_configured_keys(tmp_path: Path) -> None:
    configured = keyring_from_settings(
        Settings(_env_file=None, data_dir=tmp_path, encryption_keys=f"{SPEC_B},{SPEC_A}")
    )
    assert configured.key_ids == ["2026-b", "2026-a"]
    assert not (tmp_path / "encryption.key").exists()
    with pytest.raises(EncryptionConfigError, match="FAULTMAVEN_ENCRYPTION_KEYS must be set"):
        keyring_from_settings(Settings(_env_file=None, data_dir=tmp_path, postgres_dsn="postgresql://db/fm"))
    embedded = keyring_from_settings(Settings(_env_file=None, data_dir=tmp_path))
    assert embedded.primary_key_id.startswith("local-")
    assert (tmp_path / "encryption.key").exists()


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=4096))
def test_round_trip_arbitrary_bytes(data: bytes) -> None:
    ring = KeyRing.from_spec(f"{SPEC_B},{SPEC_A}")
    assert ring.decrypt(ring.encrypt(data)) == data
    assert KeyRing.from_spec(SPEC_A).decrypt(KeyRing.from_spec(SPEC_A).encrypt(data)) == data


@settings(max_examples=200, deadline=None)
@given(data=st.binary(min_size=1, max_size=512), flip=st.integers(min_value=0), bit=st.integers(0, 7))
def test_any_single_bit_flip_is_rejected(data: bytes, flip: int, bit: int) -> None:
    ring = KeyRing.from_spec(SPEC_A)
    envelope = bytearray(ring.encrypt(data))
    envelope[flip % len(envelope)] ^= 1 << bit
    with pytest.raises(DecryptionError):
        ring.decrypt(bytes(envelope))


def test_concurrent_first_use_agrees_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "encryption.key"
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        rings = list(pool.map(lambda _: load_or_create_key_file(path), range(16)))
    assert len({ring.primary_key_id for ring in rings}) == 1
    envelope = rings[0].encrypt(LOG_LINES)
    assert all(ring.decrypt(envelope) == LOG_LINES for ring in rings)
    assert sorted(os.listdir(tmp_path)) == ["encryption.key"]


def test_key_file_under_a_non_directory_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("not a directory")
    with pytest.raises(
        EncryptionConfigError, match=r"Cannot create the encryption key file .*data/encryption\.key"
    ):
        load_or_create_key_file(blocker / "encryption.key")
