"""Casework's encrypted columns (``baoxue pii rotate``) and blind-index columns (``baoxue pii reindex``).

Every ``ctx.cipher.encrypt`` of this service writes one of the encrypted columns, and every blind index it
stores is in one of the blind-index columns; a new one belongs here
(``tests/security/test_pii_rotation_services.py`` and ``tests/security/test_blind_index_reindex.py`` fail
on a token or an index in an undeclared column).
"""

from __future__ import annotations

from baoxue.pii.reindex import BlindIndexColumn
from baoxue.pii.rotation import EncryptedColumn
from casework.cases.models import Case
from casework.readmodels.models import StudentRecord

# The normalised ID number, no associated data (casework.cases.service).
_ID_NUMBER = EncryptedColumn(Case.__table__, "id_number_enc")  # type: ignore[attr-defined]

ENCRYPTED_COLUMNS = (_ID_NUMBER,)

BLIND_INDEX_COLUMNS = (
    # A case opened by a school carries the ID number; one opened from an event, its index only.
    BlindIndexColumn(Case.__table__, "id_blind_index", source=_ID_NUMBER),  # type: ignore[attr-defined]
    # Copies from enrollment's events.
    BlindIndexColumn(StudentRecord.__table__, "id_blind_index"),  # type: ignore[attr-defined]
)
