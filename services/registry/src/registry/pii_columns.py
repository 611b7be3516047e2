"""Registry's encrypted columns with the associated data each is encrypted with, for ``baoxue pii rotate``.

Every ``cipher.encrypt`` of this service writes one of these columns (tokens made for a staged feed row
are copied as they are into ``children`` and ``child_attributes``, keeping their associated data); a new
one belongs here (the test ``tests/security/test_pii_rotation_services.py`` fails on a token in an
undeclared column).
"""

from __future__ import annotations

from baoxue.pii.rotation import EncryptedColumn
from registry.children.models import Child, ChildAttribute
from registry.feeds.models import FeedRow
from registry.feeds.validation import ID_AAD, PHONE_AAD, RAW_ROW_AAD

_ROW_KEY = ("batch_id", "row_number")

ENCRYPTED_COLUMNS = (
    EncryptedColumn(Child.__table__, "id_cipher", associated_data=ID_AAD),  # type: ignore[attr-defined]
    EncryptedColumn(Child.__table__, "guardian_phone", associated_data=PHONE_AAD),  # type: ignore[attr-defined]
    # Only the guardian phone is an encrypted attribute (registry.children.merge.ENCRYPTED).
    EncryptedColumn(ChildAttribute.__table__, "value_cipher", associated_data=PHONE_AAD),  # type: ignore[attr-defined]
    EncryptedColumn(FeedRow.__table__, "id_cipher", key=_ROW_KEY, associated_data=ID_AAD),  # type: ignore[attr-defined]
    EncryptedColumn(FeedRow.__table__, "guardian_phone", key=_ROW_KEY, associated_data=PHONE_AAD),  # type: ignore[attr-defined]
    EncryptedColumn(FeedRow.__table__, "raw_cipher", key=_ROW_KEY, associated_data=RAW_ROW_AAD),  # type: ignore[attr-defined]
)
