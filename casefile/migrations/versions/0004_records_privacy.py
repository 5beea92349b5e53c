"""archival versions (PDF/A), exemption from publication, tombstones of deleted content

Revision ID: 0004
Revises: 0002
Create Date: 2026-12-01 23:30:00

Three new tables; nothing existing changes.
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: Union[str, Sequence[str], None] = "0003"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "archival_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("document_id", sa.Integer(), sa.ForeignKey("documents.id"), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("source_sha256", sa.String(length=64), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("storage_path", sa.String(length=255), nullable=True),
        sa.Column("from_format", sa.String(length=255), nullable=False),
        sa.Column("to_format", sa.String(length=255), nullable=True),
        sa.Column("format_details", sa.Text(), nullable=True),
        sa.Column("tool", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("converted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("converted_by", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("document_id"),
    )
    op.create_table(
        "publication_exemptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("intake_id", sa.Integer(), sa.ForeignKey("intake_records.id"), nullable=False),
        sa.Column("document_id", sa.Integer(), sa.ForeignKey("documents.id"), nullable=True),
        sa.Column("legal_basis", sa.Text(), nullable=False),
        sa.Column("access_code", sa.String(length=16), nullable=False),
        sa.Column("screen_names", sa.Boolean(), nullable=False),
        sa.Column("decided_by", sa.String(length=128), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("intake_id", "document_id", name="uq_exemption_target"),
    )
    op.create_index("ix_publication_exemptions_intake_id", "publication_exemptions", ["intake_id"])
    op.create_table(
        "content_tombstones",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("intake_id", sa.Integer(), sa.ForeignKey("intake_records.id"), nullable=False),
        sa.Column("rule", sa.String(length=128), nullable=False),
        sa.Column("deleted_by", sa.String(length=128), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("intake_id"),
    )


def downgrade() -> None:
    op.drop_table("content_tombstones")
    op.drop_index("ix_publication_exemptions_intake_id", table_name="publication_exemptions")
    op.drop_table("publication_exemptions")
    op.drop_table("archival_versions")
