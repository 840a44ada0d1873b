"""Member imports: a file of members brought in from another system, run as a resumable job."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from walletd.db import Base, UTCDateTime, utcnow
from walletd.models.types import JSONText

# "draft": a dashboard preview waiting for its confirmation; the worker only claims "queued".
IMPORT_STATUSES = ("draft", "queued", "running", "done", "failed")


class MemberImport(Base):
    """One import job: its counts, its first row errors and the chunk its worker is at."""

    __tablename__ = "member_imports"

    id: Mapped[int] = mapped_column(primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    program_id: Mapped[int] = mapped_column(
        ForeignKey("programs.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(16), default="queued")
    filename: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # Rows of the file; processed counts rows refused while reading it plus the rows of every
    # committed chunk, so processed == total once the job is done.
    total: Mapped[int] = mapped_column(Integer, default=0)
    processed: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    # Rows not imported because of an error (error_rows of them were refused with a reason).
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    # The first row errors ([{"row", "field", "message"}]); error_count says how many there were.
    errors: Mapped[Any] = mapped_column(JSONText(), nullable=True)
    chunks: Mapped[int] = mapped_column(Integer, default=0)
    # The sequence number of the next chunk to apply: a crashed worker's successor starts here.
    cursor: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # Who asked (plain ids: the job outlives the key or the account).
    created_by_api_key_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_by_staff_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_by_label: Mapped[str] = mapped_column(String(330), default="")
    claimed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class MemberImportChunk(Base):
    """Up to a chunk of an import's validated rows (JSON), deleted when the job is done."""

    __tablename__ = "member_import_chunks"
    __table_args__ = (UniqueConstraint("import_id", "seq"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    import_id: Mapped[int] = mapped_column(ForeignKey("member_imports.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    rows: Mapped[Any] = mapped_column(JSONText())
