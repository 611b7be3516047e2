"""Casework's encrypted columns, for ``baoxue pii rotate``.

Every ``ctx.cipher.encrypt`` of this service writes one of these columns; a new one belongs here (the
test ``tests/security/test_pii_rotation_services.py`` fails on a token in an undeclared column).
"""

from __future__ import annotations

from baoxue.pii.rotation import EncryptedColumn
from casework.cases.models import Case

ENCRYPTED_COLUMNS = (
    # The normalised ID number, no associated data (casework.cases.service).
    EncryptedColumn(Case.__table__, "id_number_enc"),  # type: ignore[attr-defined]
)
