"""Field encryption (SM4-GCM by default, AES-GCM as an option) and a keyed blind index (HMAC-SM3).

ID numbers are stored as `FieldCipher` tokens and found through `BlindIndex` values; an unkeyed hash of
the ID space would fall to brute force in seconds. The cipher key and the blind-index key must be
different keys. `self_test()` runs known-answer tests and belongs in every service's start-up.

Nothing raised from here carries plaintext or key material in its message.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Mapping
from hmac import compare_digest
from typing import Final, Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from baoxue.entropy import random_bytes

CipherAlgorithm = Literal["sm4-gcm", "aes-gcm"]

_TAG_OF: Final[dict[CipherAlgorithm, str]] = {"sm4-gcm": "s4", "aes-gcm": "a2"}
_ALGORITHM_OF: Final[dict[str, CipherAlgorithm]] = {tag: alg for alg, tag in _TAG_OF.items()}
_KEY_SIZES: Final[dict[CipherAlgorithm, frozenset[int]]] = {
    "sm4-gcm": frozenset({16}),
    "aes-gcm": frozenset({16, 32}),
}
_NONCE_BYTES: Final = 12
_TAG_BYTES: Final = 16
_MIN_KEY_BYTES: Final = 16
# Key ids travel inside tokens and settings, so they must not contain the separators '.', ':' or ','.
_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")


class PiiCryptoError(Exception):
    """Base class for personal-data crypto failures."""


class PiiDecryptError(PiiCryptoError):
    """A token could not be decrypted: malformed, unknown key id, tampered, or wrong associated data."""


class CryptoSelfTestError(PiiCryptoError):
    """A known-answer test failed: the crypto library in this process cannot be trusted."""


class FieldCipher:
    """Authenticated encryption of single text fields into compact ASCII tokens.

    A token is `"<alg-tag>.<key_id>.<base64url(nonce12 + ciphertext + tag16)>"` with alg-tag `s4`
    (SM4-GCM) or `a2` (AES-GCM). The tag and key id are authenticated together with the caller's
    associated data, so a token cannot be relabelled to another key or algorithm. Old keys keep
    decrypting after rotation as long as they stay in `keys`.
    """

    def __init__(
        self,
        keys: Mapping[str, bytes],
        active_key_id: str,
        algorithm: CipherAlgorithm = "sm4-gcm",
    ) -> None:
        if algorithm not in _TAG_OF:
            raise ValueError("unsupported field-cipher algorithm")
        for key_id, key in keys.items():
            _check_key_id(key_id)
            if len(key) not in _KEY_SIZES["sm4-gcm"] | _KEY_SIZES["aes-gcm"]:
                raise ValueError(f"key {key_id!r} must be 16 or 32 bytes")
        if active_key_id not in keys:
            raise ValueError(f"active key {active_key_id!r} is not among the configured keys")
        if len(keys[active_key_id]) not in _KEY_SIZES[algorithm]:
            raise ValueError(f"active key {active_key_id!r} has the wrong length for {algorithm}")
        self._keys = dict(keys)
        self.active_key_id = active_key_id
        self.algorithm: CipherAlgorithm = algorithm

    def encrypt(self, plaintext: str, *, associated_data: bytes = b"") -> str:
        """Encrypt `plaintext` under the active key with a fresh random 96-bit nonce; return a token.

        The same `associated_data` (e.g. the table and row id) must be given to `decrypt`.
        """
        tag = _TAG_OF[self.algorithm]
        nonce = random_bytes(_NONCE_BYTES)  # drawn a block at a time: see baoxue.entropy
        sealed = _seal(
            self.algorithm,
            self._keys[self.active_key_id],
            nonce,
            plaintext.encode("utf-8"),
            _header(tag, self.active_key_id) + associated_data,
        )
        return _header(tag, self.active_key_id).decode("ascii") + _b64url_encode(nonce + sealed)

    def decrypt(self, token: str, *, associated_data: bytes = b"") -> str:
        """Return the plaintext of `token`, using the key id and algorithm written in the token.

        Raises PiiDecryptError for malformed or tampered tokens, unknown key ids, or associated data
        that differs from the one given at encryption.
        """
        algorithm, key_id, payload = _split_token(token)
        key = self._keys.get(key_id)
        if key is None or len(key) not in _KEY_SIZES[algorithm]:
            raise PiiDecryptError(f"no usable key {key_id!r} for this token")
        nonce, sealed = payload[:_NONCE_BYTES], payload[_NONCE_BYTES:]
        aad = _header(_TAG_OF[algorithm], key_id) + associated_data
        try:
            return _open(algorithm, key, nonce, sealed, aad).decode("utf-8")
        except (InvalidTag, UnicodeDecodeError):
            raise PiiDecryptError("token failed authentication") from None

    @property
    def active_prefix(self) -> str:
        """How every token made now begins (``"<alg-tag>.<active key id>."``); a stored token that does not
        begin so needs rotation. Lets a rotation select only such rows in SQL."""
        return _header(_TAG_OF[self.algorithm], self.active_key_id).decode("ascii")

    def needs_rotation(self, token: str) -> bool:
        """True when `token` was not made with the active key and algorithm (raises PiiDecryptError if
        the token is malformed)."""
        algorithm, key_id, _ = _split_token(token)
        return key_id != self.active_key_id or algorithm != self.algorithm

    def rotate(self, token: str, *, associated_data: bytes = b"") -> str:
        """Re-encrypt `token` under the active key and algorithm; the plaintext never leaves this call."""
        return self.encrypt(
            self.decrypt(token, associated_data=associated_data), associated_data=associated_data
        )


class BlindIndex:
    """Keyed HMAC-SM3 of a value, for equality search over encrypted fields.

    The caller normalises the value: ID numbers must go through
    `baoxue.pii.citizen_id.normalise_id_number` first, or the same person gets different index values.
    """

    def __init__(self, key: bytes) -> None:
        if len(key) < _MIN_KEY_BYTES:
            raise ValueError(f"a blind-index key needs at least {_MIN_KEY_BYTES} bytes")
        self._key = key

    @classmethod
    def from_setting(cls, value: str, *, name: str = "blind_index_key") -> BlindIndex:
        """The blind index of a base64 key setting (``BAOXUE_BLIND_INDEX_KEY``); ValueError naming the
        setting (never the key) when it is not base64 or too short."""
        return cls(key_from_setting(value, name=name))

    def same_key_as(self, other: BlindIndex) -> bool:
        """Whether both compute the same values (compared in constant time)."""
        return compare_digest(self._key, other._key)

    def of(self, value: str) -> str:
        """Return the blind index of `value` as 64 lowercase hex characters; stable for one key, unrelated
        between keys. Raises ValueError for an empty value (it would match every empty field)."""
        if not value:
            raise ValueError("no blind index for an empty value")
        return _hmac_sm3(self._key, value.encode("utf-8")).hex()


def key_from_setting(value: str, *, name: str) -> bytes:
    """The bytes of one base64 key setting (standard or URL-safe, padding optional, surrounding spaces
    ignored); ValueError naming the setting (never the key) when it is not base64 or too short."""
    key = _b64_decode_any(value.strip())
    if key is None:
        raise ValueError(f"{name} is not valid base64")
    if len(key) < _MIN_KEY_BYTES:
        raise ValueError(f"{name} is shorter than {_MIN_KEY_BYTES} bytes")
    return key


def keys_from_setting(value: str) -> dict[str, bytes]:
    """Parse a key setting `"k1:BASE64KEY,k2:BASE64KEY"` (standard or URL-safe base64, padding optional).

    Raises ValueError naming the key id (never the key) when an entry is malformed, a key id repeats, a key
    is not base64, or a key is shorter than 16 bytes.
    """
    keys: dict[str, bytes] = {}
    entries = [entry.strip() for entry in value.split(",") if entry.strip()]
    if not entries:
        raise ValueError("the key setting is empty")
    for position, entry in enumerate(entries, start=1):
        key_id, separator, encoded = (part.strip() for part in entry.partition(":"))
        if not separator or not key_id:
            raise ValueError(f"key entry {position} has no key id (expected 'id:base64key')")
        _check_key_id(key_id)
        if key_id in keys:
            raise ValueError(f"key {key_id!r} appears more than once")
        key = _b64_decode_any(encoded)
        if key is None:
            raise ValueError(f"key {key_id!r} is not valid base64")
        if len(key) < _MIN_KEY_BYTES:
            raise ValueError(f"key {key_id!r} is shorter than {_MIN_KEY_BYTES} bytes")
        keys[key_id] = key
    return keys


def generate_key(nbytes: int = 16) -> str:
    """Return a fresh random key of `nbytes` bytes (at least 16), base64-encoded for a key setting."""
    if nbytes < _MIN_KEY_BYTES:
        raise ValueError(f"keys need at least {_MIN_KEY_BYTES} bytes")
    return base64.b64encode(secrets.token_bytes(nbytes)).decode("ascii")


# --- Known-answer tests ------------------------------------------------------------------------------
# Published vectors where one exists; the HMAC-SM3 value is a regression vector computed once with this
# library and cross-checked against Python's hmac + OpenSSL's SM3, pinned so a broken build is caught.
_SM4_BLOCK_KEY: Final = bytes.fromhex("0123456789abcdeffedcba9876543210")
_SM4_BLOCK_CIPHERTEXT: Final = bytes.fromhex("681edf34d206965e86b3e94f536e4246")  # GB/T 32907-2016 A.1
_SM3_ABC: Final = bytes.fromhex("66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0")
# RFC 8998 appendix A.1 (SM4-GCM).
_SM4_GCM_NONCE: Final = bytes.fromhex("00001234567800000000abcd")
_SM4_GCM_AAD: Final = bytes.fromhex("feedfacedeadbeeffeedfacedeadbeefabaddad2")
_SM4_GCM_PLAINTEXT: Final = bytes.fromhex(
    "aaaaaaaaaaaaaaaabbbbbbbbbbbbbbbbccccccccccccccccdddddddddddddddd"
    "eeeeeeeeeeeeeeeeffffffffffffffffeeeeeeeeeeeeeeeeaaaaaaaaaaaaaaaa"
)
_SM4_GCM_SEALED: Final = bytes.fromhex(
    "17f399f08c67d5ee19d0dc9969c4bb7d5fd46fd3756489069157b282bb200735"
    "d82710ca5c22f0ccfa7cbf93d496ac15a56834cbcf98c397b4024a2691233b8d"
    "83de3541e4c2b58177e065a9bf7b62ec"  # authentication tag
)
# McGrew & Viega, "The Galois/Counter Mode of Operation", test case 2 (AES-128, zero key/nonce/block).
_AES_GCM_SEALED: Final = bytes.fromhex("0388dace60b6a392f328c2b971b2fe78ab6e47d42cec13bdf53a67b21257bddf")
_HMAC_SM3_KEY: Final = bytes(range(32))
_HMAC_SM3_ABC: Final = bytes.fromhex("a8f95cf26f204957e7ca73c9602a25dda35f168b28103b51dfc968c810416b63")


def self_test() -> None:
    """Run the known-answer tests (SM4 block, SM3, SM4-GCM, AES-GCM, HMAC-SM3) through the same code
    paths the field cipher and blind index use. Raises CryptoSelfTestError on any mismatch."""
    encryptor = Cipher(algorithms.SM4(_SM4_BLOCK_KEY), modes.ECB()).encryptor()  # noqa: S305 - one-block KAT
    _expect("SM4 block", encryptor.update(_SM4_BLOCK_KEY) + encryptor.finalize(), _SM4_BLOCK_CIPHERTEXT)

    digest = hashes.Hash(hashes.SM3())
    digest.update(b"abc")
    _expect("SM3", digest.finalize(), _SM3_ABC)

    _expect_round_trip(
        "sm4-gcm",
        _SM4_BLOCK_KEY,
        nonce=_SM4_GCM_NONCE,
        plaintext=_SM4_GCM_PLAINTEXT,
        aad=_SM4_GCM_AAD,
        sealed=_SM4_GCM_SEALED,
    )
    _expect_round_trip(
        "aes-gcm", bytes(16), nonce=bytes(12), plaintext=bytes(16), aad=b"", sealed=_AES_GCM_SEALED
    )
    _expect("HMAC-SM3", _hmac_sm3(_HMAC_SM3_KEY, b"abc"), _HMAC_SM3_ABC)


def _expect_round_trip(
    algorithm: CipherAlgorithm, key: bytes, *, nonce: bytes, plaintext: bytes, aad: bytes, sealed: bytes
) -> None:
    _expect(f"{algorithm} encrypt", _seal(algorithm, key, nonce, plaintext, aad), sealed)
    _expect(f"{algorithm} decrypt", _open(algorithm, key, nonce, sealed, aad), plaintext)
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 0x01])
    try:
        _open(algorithm, key, nonce, tampered, aad)
    except InvalidTag:
        return
    raise CryptoSelfTestError(f"{algorithm} accepted a tampered ciphertext")


def _expect(what: str, actual: bytes, expected: bytes) -> None:
    if not compare_digest(actual, expected):
        raise CryptoSelfTestError(f"{what} known-answer test failed")


# --- Primitives ----------------------------------------------------------------------------------------


def _block_cipher(algorithm: CipherAlgorithm, key: bytes) -> algorithms.SM4 | algorithms.AES:
    return algorithms.SM4(key) if algorithm == "sm4-gcm" else algorithms.AES(key)


def _seal(algorithm: CipherAlgorithm, key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """Return ciphertext + 16-byte tag."""
    encryptor = Cipher(_block_cipher(algorithm, key), modes.GCM(nonce)).encryptor()
    encryptor.authenticate_additional_data(aad)
    ciphertext = encryptor.update(plaintext) + encryptor.finalize()
    return ciphertext + encryptor.tag


def _open(algorithm: CipherAlgorithm, key: bytes, nonce: bytes, sealed: bytes, aad: bytes) -> bytes:
    """Inverse of `_seal`; raises InvalidTag when anything was altered."""
    ciphertext, tag = sealed[:-_TAG_BYTES], sealed[-_TAG_BYTES:]
    decryptor = Cipher(_block_cipher(algorithm, key), modes.GCM(nonce, tag)).decryptor()
    decryptor.authenticate_additional_data(aad)
    return decryptor.update(ciphertext) + decryptor.finalize()


def _hmac_sm3(key: bytes, message: bytes) -> bytes:
    mac = hmac.HMAC(key, hashes.SM3())
    mac.update(message)
    return mac.finalize()


def _header(tag: str, key_id: str) -> bytes:
    # Key ids cannot contain '.', so header + associated data is an unambiguous concatenation.
    return f"{tag}.{key_id}.".encode("ascii")


def _split_token(token: str) -> tuple[CipherAlgorithm, str, bytes]:
    parts = token.split(".")
    if len(parts) != 3 or parts[0] not in _ALGORITHM_OF or not _KEY_ID.fullmatch(parts[1]):
        raise PiiDecryptError("malformed token")
    payload = _b64_decode_any(parts[2])
    if payload is None or len(payload) < _NONCE_BYTES + _TAG_BYTES:
        raise PiiDecryptError("malformed token")
    return _ALGORITHM_OF[parts[0]], parts[1], payload


def _check_key_id(key_id: str) -> None:
    if not _KEY_ID.fullmatch(key_id):
        # The rejected id itself is not echoed: a mis-pasted setting may have put key material here.
        raise ValueError("key ids must be 1-32 characters from A-Z, a-z, 0-9, '_' and '-'")


def _b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64_decode_any(text: str) -> bytes | None:
    """Decode standard or URL-safe base64 with or without padding; None when it is not base64."""
    if not text or not re.fullmatch(r"[A-Za-z0-9+/_-]+={0,2}", text):
        return None
    unpadded = text.rstrip("=")
    try:
        return base64.b64decode(unpadded.replace("-", "+").replace("_", "/") + "=" * (-len(unpadded) % 4))
    except binascii.Error:
        return None
