"""Notify's encrypted columns with the associated data each is encrypted with, for ``baoxue pii rotate``.

Every ``ctx.cipher.encrypt`` of this service writes one of these columns; a new one belongs here (the
test ``tests/security/test_pii_rotation_services.py`` fails on a token in an undeclared column).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from baoxue.pii.rotation import EncryptedColumn
from notify.delivery.models import EmailRecipient, SmsMessage, WebhookSubscription
from notify.delivery.sms import phone_aad
from notify.delivery.webhooks import address_aad, secret_aad
from notify.documents.models import Acknowledgement, Document
from notify.documents.service import addressee_aad, signer_aad


def _by_id(aad: Callable[[str], bytes]) -> Callable[[Mapping[str, Any]], bytes]:
    """The associated data of a row whose helper takes the row's id."""

    def of_row(row: Mapping[str, Any]) -> bytes:
        return aad(row["id"])

    return of_row


ENCRYPTED_COLUMNS = (
    EncryptedColumn(WebhookSubscription.__table__, "secret_enc", associated_data=_by_id(secret_aad)),  # type: ignore[attr-defined]
    EncryptedColumn(EmailRecipient.__table__, "address_enc", associated_data=_by_id(address_aad)),  # type: ignore[attr-defined]
    EncryptedColumn(SmsMessage.__table__, "phone_enc", associated_data=_by_id(phone_aad)),  # type: ignore[attr-defined]
    EncryptedColumn(Document.__table__, "addressee_enc", associated_data=_by_id(addressee_aad)),  # type: ignore[attr-defined]
    EncryptedColumn(Acknowledgement.__table__, "signer_enc", associated_data=_by_id(signer_aad)),  # type: ignore[attr-defined]
)
