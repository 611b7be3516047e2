"""Staging and production refuse the public development keys however they are written, and no
environment accepts a blind-index key that is also a cipher key."""

from __future__ import annotations

import base64

import pytest

from baoxue.settings import DEV_BLIND_INDEX_KEY, DEV_PII_KEYS, ServiceSettings

FRESH_PII = "prod:cHJvZC1rZXktMTYtYnl0ZQ=="  # b"prod-key-16-byte"
FRESH_BLIND = "cHJvZC1ibGluZC1pbmRleC1rZXktMzItYnl0ZXMhISE="
DEV_PII_KEY = DEV_PII_KEYS.split(":", 1)[1]


def production(**settings: object) -> ServiceSettings:
    values: dict[str, object] = {
        "environment": "production",
        "pii_keys": FRESH_PII,
        "pii_active_key_id": "prod",
        "blind_index_key": FRESH_BLIND,
        "jwt_jwks_url": "https://idp.example/jwks.json",
    }
    return ServiceSettings(**(values | settings))


def test_fresh_keys_are_accepted():
    assert production().environment == "production"


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"pii_keys": DEV_PII_KEYS, "pii_active_key_id": "dev1"}, "pii_keys"),
        ({"pii_keys": DEV_PII_KEYS.rstrip("="), "pii_active_key_id": "dev1"}, "pii_keys"),
        ({"pii_keys": f"{FRESH_PII},dev1:{DEV_PII_KEY}"}, "pii_keys"),  # kept as an older key
        ({"pii_keys": f"k1:{DEV_PII_KEY}", "pii_active_key_id": "k1"}, "pii_keys"),  # another key id
        ({"blind_index_key": DEV_BLIND_INDEX_KEY.rstrip("=")}, "blind_index_key"),
        ({"blind_index_key": DEV_BLIND_INDEX_KEY + " "}, "blind_index_key"),
        ({"new_blind_index_key": DEV_BLIND_INDEX_KEY.rstrip("=")}, "new_blind_index_key"),
        ({"jwt_jwks_url": None, "jwt_public_key_file": "./var/dev-jwt-key.pem"}, "jwt_jwks_url"),
        ({"jwt_jwks_url": None, "jwt_public_key_file": "/srv/keys/dev-jwt-key.pem"}, "jwt_jwks_url"),
    ],
)
def test_development_secrets_are_refused_however_written(settings, named):
    with pytest.raises(ValueError, match=f"development secrets are not allowed in production: .*{named}"):
        production(**settings)


@pytest.mark.parametrize("environment", ["development", "production"])
def test_a_blind_index_key_that_is_a_cipher_key_is_refused(environment):
    key = base64.b64encode(b"A" * 32).decode()
    with pytest.raises(ValueError, match="blind_index_key must not be one of the cipher keys"):
        production(
            environment=environment,
            pii_keys=f"p:{key}",
            pii_active_key_id="p",
            pii_algorithm="aes-gcm",
            blind_index_key=key.rstrip("="),
        )


def test_a_refused_setting_does_not_echo_the_keys_it_was_given():
    with pytest.raises(ValueError) as refused:
        production(pii_keys=DEV_PII_KEYS, pii_active_key_id="dev1")
    message = str(refused.value)
    assert "development secrets are not allowed in production: pii_keys" in message
    assert "input_value" not in message  # pydantic's echo of the settings given (shortened, keys and all)
    assert FRESH_BLIND[:4] not in message
