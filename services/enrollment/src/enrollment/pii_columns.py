"""Enrollment's encrypted columns, for ``baoxue pii rotate``.

Every ``ctx.cipher.encrypt`` of this service writes one of these columns; a new one belongs here (the
test ``tests/security/test_pii_rotation_services.py`` fails on a token in an undeclared column).
"""

from __future__ import annotations

from baoxue.pii.rotation import EncryptedColumn
from enrollment.students.models import StudentRecord

ENCRYPTED_COLUMNS = (
    # Student number and normalised ID number, no associated data (enrollment.students.service, .batch).
    EncryptedColumn(StudentRecord.__table__, "student_number_enc"),  # type: ignore[attr-defined]
    EncryptedColumn(StudentRecord.__table__, "id_number_enc"),  # type: ignore[attr-defined]
)
