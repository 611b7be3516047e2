"""Personal data of minors (PIPL): ID-number rules, field encryption, blind index, masking.

- `citizen_id`: normalise and validate citizen ID numbers (GB 11643-1999) and student numbers; age in 周岁.
- `crypto`: SM4-GCM/AES-GCM field tokens with key rotation, HMAC-SM3 blind index, start-up self-test.
- `masking`: masked forms of ID numbers, names, phone numbers and addresses for responses.
"""

from baoxue.pii.citizen_id import (
    IdCheck,
    IdNumberFacts,
    IdReason,
    StudentNumberReason,
    age_on,
    check_character,
    is_valid_id_number,
    normalise_id_number,
    parse_id_number,
    student_number_kind,
    validate_student_number,
)
from baoxue.pii.crypto import (
    BlindIndex,
    CryptoSelfTestError,
    FieldCipher,
    PiiCryptoError,
    PiiDecryptError,
    generate_key,
    keys_from_setting,
    self_test,
)
from baoxue.pii.masking import mask_address, mask_id_number, mask_name, mask_phone

__all__ = [
    "BlindIndex",
    "CryptoSelfTestError",
    "FieldCipher",
    "IdCheck",
    "IdNumberFacts",
    "IdReason",
    "PiiCryptoError",
    "PiiDecryptError",
    "StudentNumberReason",
    "age_on",
    "check_character",
    "generate_key",
    "is_valid_id_number",
    "keys_from_setting",
    "mask_address",
    "mask_id_number",
    "mask_name",
    "mask_phone",
    "normalise_id_number",
    "parse_id_number",
    "self_test",
    "student_number_kind",
    "validate_student_number",
]
