"""Registry's encrypted columns (``baoxue pii rotate``) and blind-index columns (``baoxue pii reindex``).

Every ``cipher.encrypt`` of this service writes one of the encrypted columns (tokens made for a staged
feed row are copied as they are into ``children`` and ``child_attributes``, keeping their associated
data); every ``blind_index.of`` value is stored in one of the blind-index columns. A new one belongs here
(``tests/security/test_pii_rotation_services.py`` and ``tests/security/test_blind_index_reindex.py`` fail
on a token or an index in an undeclared column).
"""

from __future__ import annotations

from baoxue.pii.reindex import BlindIndexColumn
from baoxue.pii.rotation import EncryptedColumn
from registry.children.models import Child, ChildAttribute
from registry.feeds.models import FeedRow
from registry.feeds.validation import ID_AAD, PHONE_AAD, RAW_ROW_AAD

_ROW_KEY = ("batch_id", "row_number")

_CHILD_ID = EncryptedColumn(Child.__table__, "id_cipher", associated_data=ID_AAD)  # type: ignore[attr-defined]
# Only the guardian phone is an encrypted attribute (registry.children.merge.ENCRYPTED).
_ATTRIBUTE = EncryptedColumn(ChildAttribute.__table__, "value_cipher", associated_data=PHONE_AAD)  # type: ignore[attr-defined]
_ROW_ID = EncryptedColumn(FeedRow.__table__, "id_cipher", key=_ROW_KEY, associated_data=ID_AAD)  # type: ignore[attr-defined]
_ROW_PHONE = EncryptedColumn(FeedRow.__table__, "guardian_phone", key=_ROW_KEY, associated_data=PHONE_AAD)  # type: ignore[attr-defined]

ENCRYPTED_COLUMNS = (
    _CHILD_ID,
    EncryptedColumn(Child.__table__, "guardian_phone", associated_data=PHONE_AAD),  # type: ignore[attr-defined]
    _ATTRIBUTE,
    _ROW_ID,
    _ROW_PHONE,
    EncryptedColumn(FeedRow.__table__, "raw_cipher", key=_ROW_KEY, associated_data=RAW_ROW_AAD),  # type: ignore[attr-defined]
)

BLIND_INDEX_COLUMNS = (
    BlindIndexColumn(Child.__table__, "id_blind", source=_CHILD_ID),  # type: ignore[attr-defined]
    # Provenance keeps an encrypted attribute's blind index as its value (plain values elsewhere).
    BlindIndexColumn(ChildAttribute.__table__, "value", source=_ATTRIBUTE, only_rows_with_source=True),  # type: ignore[attr-defined]
    BlindIndexColumn(FeedRow.__table__, "id_blind", source=_ROW_ID),  # type: ignore[attr-defined]
    BlindIndexColumn(FeedRow.__table__, "guardian_phone_blind", source=_ROW_PHONE),  # type: ignore[attr-defined]
)
