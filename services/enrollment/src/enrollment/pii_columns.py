"""Enrollment's encrypted columns (``baoxue pii rotate``) and blind-index columns (``baoxue pii reindex``).

Every ``ctx.cipher.encrypt`` of this service writes one of the encrypted columns, and every blind index it
stores (its own, or one from the registry's events or the provincial platform) is in one of the
blind-index columns; a new one belongs here (``tests/security/test_pii_rotation_services.py`` and
``tests/security/test_blind_index_reindex.py`` fail on a token or an index in an undeclared column).
"""

from __future__ import annotations

from baoxue.pii.reindex import BlindIndexColumn
from baoxue.pii.rotation import EncryptedColumn
from enrollment.children.models import ChildView
from enrollment.provincial.models import ProvincialRecord
from enrollment.students.models import StudentRecord

# Student number and normalised ID number, no associated data (enrollment.students.service, .batch).
_NUMBER = EncryptedColumn(StudentRecord.__table__, "student_number_enc")  # type: ignore[attr-defined]
_ID_NUMBER = EncryptedColumn(StudentRecord.__table__, "id_number_enc")  # type: ignore[attr-defined]

ENCRYPTED_COLUMNS = (_NUMBER, _ID_NUMBER)

BLIND_INDEX_COLUMNS = (
    BlindIndexColumn(StudentRecord.__table__, "id_blind_index", source=_ID_NUMBER),  # type: ignore[attr-defined]
    BlindIndexColumn(StudentRecord.__table__, "student_number_index", source=_NUMBER),  # type: ignore[attr-defined]
    # Copies: the registry's index of each child (events), the platform's records (imports).
    BlindIndexColumn(ChildView.__table__, "id_blind_index"),  # type: ignore[attr-defined]
    BlindIndexColumn(ProvincialRecord.__table__, "id_blind_index"),  # type: ignore[attr-defined]
)
