"""Field encryption tokens, key rotation, blind index, key settings and the start-up self-test."""

import base64
import re

import pytest

from baoxue.pii import crypto
from baoxue.pii.citizen_id import normalise_id_number
from baoxue.pii.crypto import (
    BlindIndex,
    CryptoSelfTestError,
    FieldCipher,
    PiiDecryptError,
    generate_key,
    keys_from_setting,
    self_test,
)

K1 = bytes(range(16))
K2 = bytes(range(16, 32))
K32 = bytes(range(32))
SECRET = "11010519491231002X"


def flip_payload_byte(token: str, index: int) -> str:
    tag, key_id, payload = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    raw[index] ^= 0x01
    return f"{tag}.{key_id}." + base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


@pytest.mark.parametrize(
    ("algorithm", "key", "tag"), [("sm4-gcm", K1, "s4"), ("aes-gcm", K1, "a2"), ("aes-gcm", K32, "a2")]
)
@pytest.mark.parametrize("plaintext", [SECRET, "", "张三 · 山东省枣庄市", "x" * 1000])
def test_round_trip(algorithm, key, tag, plaintext):
    cipher = FieldCipher({"k1": key}, "k1", algorithm=algorithm)
    token = cipher.encrypt(plaintext)
    assert token.startswith(f"{tag}.k1.")
    assert re.fullmatch(r"[a-z0-9]{2}\.k1\.[A-Za-z0-9_-]+", token)  # compact, URL-safe, no padding
    assert cipher.decrypt(token) == plaintext


def test_sm4_is_the_default_and_nonces_are_fresh():
    cipher = FieldCipher({"k1": K1}, "k1")
    first, second = cipher.encrypt(SECRET), cipher.encrypt(SECRET)
    assert first.startswith("s4.") and first != second
    assert SECRET not in first


@pytest.mark.parametrize("index", [0, 11, 12, 20, -1])  # nonce, ciphertext, tag
def test_any_flipped_byte_is_detected(index):
    cipher = FieldCipher({"k1": K1}, "k1")
    with pytest.raises(PiiDecryptError) as caught:
        cipher.decrypt(flip_payload_byte(cipher.encrypt(SECRET), index))
    assert SECRET not in str(caught.value)


def test_associated_data_must_match():
    cipher = FieldCipher({"k1": K1}, "k1")
    token = cipher.encrypt(SECRET, associated_data=b"child:42")
    assert cipher.decrypt(token, associated_data=b"child:42") == SECRET
    with pytest.raises(PiiDecryptError):
        cipher.decrypt(token, associated_data=b"child:43")
    with pytest.raises(PiiDecryptError):
        cipher.decrypt(token)


def test_header_is_authenticated():
    cipher = FieldCipher({"k1": K1, "k2": K1}, "k1")  # same key bytes: only the header differs
    token = cipher.encrypt(SECRET)
    with pytest.raises(PiiDecryptError):
        cipher.decrypt(token.replace("s4.k1.", "s4.k2.", 1))
    with pytest.raises(PiiDecryptError):
        cipher.decrypt(token.replace("s4.k1.", "a2.k1.", 1))


@pytest.mark.parametrize(
    "token",
    ["", "s4.k1", "s4.k1.AAAA", "zz.k1." + "A" * 40, "s4.k 1." + "A" * 40, "s4.k1.!!!!", "s4.k9." + "A" * 40],
)
def test_malformed_tokens_and_unknown_keys_are_decrypt_errors(token):
    with pytest.raises(PiiDecryptError):
        FieldCipher({"k1": K1}, "k1").decrypt(token)


def test_rotation_keeps_old_tokens_readable_and_moves_them_to_the_active_key():
    old_token = FieldCipher({"k1": K1}, "k1").encrypt(SECRET, associated_data=b"row")
    rotated_cipher = FieldCipher({"k1": K1, "k2": K2}, "k2")

    assert rotated_cipher.decrypt(old_token, associated_data=b"row") == SECRET
    assert rotated_cipher.needs_rotation(old_token)

    new_token = rotated_cipher.rotate(old_token, associated_data=b"row")
    assert new_token.startswith("s4.k2.")
    assert not rotated_cipher.needs_rotation(new_token)
    assert FieldCipher({"k2": K2}, "k2").decrypt(new_token, associated_data=b"row") == SECRET

    with pytest.raises(PiiDecryptError):  # once the old key is retired, its tokens are unreadable
        FieldCipher({"k2": K2}, "k2").decrypt(old_token, associated_data=b"row")


def test_switching_algorithm_means_rotation():
    keys = {"k1": K1}
    aes_token = FieldCipher(keys, "k1", algorithm="aes-gcm").encrypt(SECRET)
    sm4 = FieldCipher(keys, "k1", algorithm="sm4-gcm")
    assert sm4.decrypt(aes_token) == SECRET  # algorithm is taken from the token
    assert sm4.needs_rotation(aes_token)
    assert sm4.rotate(aes_token).startswith("s4.k1.")


@pytest.mark.parametrize(
    ("keys", "active", "algorithm"),
    [
        ({"k1": K1}, "k2", "sm4-gcm"),  # active key not configured
        ({"k1": K32}, "k1", "sm4-gcm"),  # SM4 keys are 16 bytes
        ({"k1": bytes(24)}, "k1", "aes-gcm"),
        ({"k1": bytes(8)}, "k1", "aes-gcm"),
        ({"k.1": K1}, "k.1", "sm4-gcm"),  # '.' would break the token format
        ({"k1": K1}, "k1", "des"),
    ],
)
def test_bad_cipher_configuration(keys, active, algorithm):
    with pytest.raises(ValueError):
        FieldCipher(keys, active, algorithm=algorithm)


# --- Blind index ----------------------------------------------------------------------------------------


def test_blind_index_is_stable_per_key_and_differs_between_keys():
    index = BlindIndex(K32)
    value = index.of(SECRET)
    assert re.fullmatch(r"[0-9a-f]{64}", value)
    assert BlindIndex(K32).of(SECRET) == value
    assert BlindIndex(K2).of(SECRET) != value
    assert index.of("110105194912310029") != value


def test_blind_index_of_a_normalised_id_number_finds_the_same_child():
    index = BlindIndex(K1)
    assert index.of(normalise_id_number(" 110105 19491231 002x")) == index.of(SECRET)


def test_blind_index_refuses_short_keys_and_empty_values():
    with pytest.raises(ValueError):
        BlindIndex(bytes(15))
    with pytest.raises(ValueError):
        BlindIndex(K1).of("")


# --- Key settings ---------------------------------------------------------------------------------------


def test_keys_from_setting_accepts_standard_and_urlsafe_base64_with_or_without_padding():
    std = base64.b64encode(b"\xfb" * 16).decode()  # contains '+' and '/'
    urlsafe = base64.urlsafe_b64encode(b"\xfb" * 32).decode().rstrip("=")
    keys = keys_from_setting(f" k1:{std} , k2:{urlsafe},")
    assert keys == {"k1": b"\xfb" * 16, "k2": b"\xfb" * 32}


@pytest.mark.parametrize(
    ("setting", "expected_message"),
    [
        ("", "empty"),
        (" , ", "empty"),
        ("AAAAAAAAAAAAAAAAAAAAAA==", "entry 1 has no key id"),
        (
            "k1:" + base64.b64encode(K1).decode() + ",:" + base64.b64encode(K2).decode(),
            "entry 2 has no key id",
        ),
        ("k1:" + base64.b64encode(K1).decode() + ",k1:" + base64.b64encode(K2).decode(), "'k1'"),
        ("k1:not*base64", "'k1' is not valid base64"),
        ("k1:", "'k1' is not valid base64"),
        ("k1:" + base64.b64encode(bytes(8)).decode(), "'k1' is shorter than 16 bytes"),
        ("k.1:" + base64.b64encode(K1).decode(), "key ids must be"),
    ],
)
def test_bad_key_settings_name_the_key_id_never_the_key(setting, expected_message):
    with pytest.raises(ValueError) as caught:
        keys_from_setting(setting)
    message = str(caught.value)
    assert expected_message in message
    for part in re.split(r"[,:]", setting):
        if len(part.strip()) > 4:
            assert part.strip() not in message


def test_generate_key():
    encoded = generate_key()
    assert len(base64.b64decode(encoded)) == 16
    assert len(base64.b64decode(generate_key(32))) == 32
    assert generate_key() != encoded
    assert keys_from_setting(f"k1:{encoded}") == {"k1": base64.b64decode(encoded)}
    with pytest.raises(ValueError):
        generate_key(8)


# --- Known-answer tests ---------------------------------------------------------------------------------


def test_self_test_passes():
    self_test()


@pytest.mark.parametrize(
    "constant",
    ["_SM4_BLOCK_CIPHERTEXT", "_SM3_ABC", "_SM4_GCM_SEALED", "_AES_GCM_SEALED", "_HMAC_SM3_ABC"],
)
def test_self_test_fails_loudly_on_a_wrong_answer(monkeypatch, constant):
    wrong = bytearray(getattr(crypto, constant))
    wrong[0] ^= 0xFF
    monkeypatch.setattr(crypto, constant, bytes(wrong))
    with pytest.raises(CryptoSelfTestError):
        self_test()
