"""cancelled journal entries: a registration undone keeps its journalpost, listed with journalstatus "Utgår"

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 05:00:00
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: Union[str, Sequence[str], None] = "0008"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "cancelled_journal_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("system_id", sa.String(length=36), nullable=False),
        sa.Column("intake_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("journal_year", sa.Integer(), nullable=False),
        sa.Column("journal_sequence", sa.Integer(), nullable=False),
        sa.Column("document_number", sa.Integer(), nullable=False),
        sa.Column("journal_date", sa.Date(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("entry_type", sa.String(length=64), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("correspondent_role", sa.String(length=32), nullable=False),
        sa.Column("correspondent_name", sa.Text(), nullable=True),
        sa.Column("correspondent_email", sa.String(length=512), nullable=True),
        sa.Column("correspondent_is_private_person", sa.Boolean(), nullable=True),
        sa.Column("on_time", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancelled_by", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.ForeignKeyConstraint(["intake_id"], ["intake_records.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_id", "document_number", name="uq_cancelled_case_document_number"),
        sa.UniqueConstraint("journal_year", "journal_sequence", name="uq_cancelled_journal_number"),
        sa.UniqueConstraint("system_id"),
    )
    with op.batch_alter_table("cancelled_journal_entries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cancelled_journal_entries_case_id"), ["case_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_cancelled_journal_entries_intake_id"), ["intake_id"], unique=False)


def downgrade() -> None:
    op.drop_table("cancelled_journal_entries")
