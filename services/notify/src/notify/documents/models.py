"""Numbered documents (公文): issued once, never changed; a correction is a new version of the number."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, Date, Index, Integer, String, Text, UniqueConstraint
from sqlmodel import Field

from baoxue.db import UTCDateTime, utcnow
from notify.database import NotifyModel


class Document(NotifyModel, table=True):
    """An issued document. Rows are immutable (a database trigger refuses updates)."""

    __tablename__ = "documents"
    __table_args__ = (
        UniqueConstraint("issuing_org", "year", "seq", "version", name="uq_documents_number_version"),
        Index("ix_documents_case", "case_id"),
        Index("ix_documents_recipient", "recipient_org"),
    )

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    kind: str = Field(max_length=40)
    issuing_org: str = Field(max_length=20)
    year: int
    seq: int
    version: int = 1
    number: str = Field(max_length=60, description="e.g. 370406001〔2026〕0007号")
    supersedes_id: str | None = Field(default=None, max_length=36)
    correction_reason: str | None = Field(default=None, max_length=200)
    recipient_org: str | None = Field(default=None, max_length=20)
    case_id: str | None = Field(default=None, max_length=36)
    escalation_id: str | None = Field(default=None, max_length=36)
    title: str = Field(max_length=100)
    content: str = Field(sa_column=Column(Text, nullable=False), description="JSON: the rendered paragraphs")
    fields: str = Field(sa_column=Column(Text, nullable=False), description="JSON: the template's inputs")
    addressee_enc: str | None = Field(default=None, sa_column=Column(Text), description="encrypted name")
    content_sha256: str = Field(max_length=64)
    issued_by: str = Field(max_length=80)
    issued_on: dt.date = Field(sa_column=Column(Date, nullable=False))
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))

    def notice(self) -> dict[str, str | None]:
        """The fields every notice event (NoticeIssued, NoticeDelivered, NoticeAcknowledged) names the
        document by: no person, only the document, its organisations and its case."""
        return {
            "notice_id": self.id,
            "number": self.number,
            "kind": self.kind,
            "issuing_org": self.issuing_org,
            "recipient_org": self.recipient_org,
            "case_id": self.case_id,
        }


class DocumentCounter(NotifyModel, table=True):
    """The last number used per issuing organisation and year (incremented inside the issuing
    transaction, so a rolled-back issue leaves no gap and concurrent issues never repeat)."""

    __tablename__ = "document_counters"

    issuing_org: str = Field(sa_column=Column(String(20), primary_key=True))
    year: int = Field(sa_column=Column(Integer, primary_key=True, autoincrement=False))
    last_seq: int = Field(default=0, sa_column=Column(Integer, nullable=False, default=0))


class Acknowledgement(NotifyModel, table=True):
    """A parent's acknowledgement or signed commitment (承诺书) of a document, recorded by the school."""

    __tablename__ = "document_acknowledgements"

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    document_id: str = Field(max_length=36, index=True)
    kind: str = Field(max_length=20, description="received | commitment (承诺书) | refused")
    acknowledged_on: dt.date = Field(sa_column=Column(Date, nullable=False))
    signer_enc: str | None = Field(default=None, sa_column=Column(Text), description="encrypted signer name")
    evidence_ref: str | None = Field(default=None, max_length=200, description="scan / archive reference")
    recorded_by: str = Field(max_length=80)
    recorded_org: str = Field(max_length=20)
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
