"""workers and mailbox leases (several workers, several mailboxes, one reader per mailbox); stored files in the
database (chunked), for documents reachable from every host

Revision ID: 0005
Revises: 0002
Create Date: 2026-12-01 23:30:00

New tables only; nothing existing changes.
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: Union[str, Sequence[str], None] = "0004"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rejected", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_workers_heartbeat_at", "workers", ["heartbeat_at"], unique=False)
    op.create_table(
        "mailbox_leases",
        sa.Column("mailbox", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=64), nullable=True),
        sa.Column("token", sa.BigInteger(), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("mailbox"),
    )
    op.create_table(
        "lease_grants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mailbox", sa.String(length=64), nullable=False),
        sa.Column("token", sa.BigInteger(), nullable=False),
        sa.Column("worker_id", sa.String(length=64), nullable=False),
        sa.Column("previous_holder", sa.String(length=64), nullable=True),
        sa.Column("previous_expired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("commits", sa.BigInteger(), nullable=False),
        sa.Column("last_commit_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("mailbox", "token", name="uq_lease_grants_mailbox_token"),
    )
    op.create_index("ix_lease_grants_mailbox", "lease_grants", ["mailbox"], unique=False)
    op.create_table(
        "stored_files",
        sa.Column("relative_path", sa.String(length=255), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("chunks", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("relative_path"),
    )
    op.create_table(
        "stored_file_chunks",
        sa.Column("relative_path", sa.String(length=255), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("relative_path", "seq"),
    )


def downgrade() -> None:
    op.drop_table("stored_file_chunks")
    op.drop_table("stored_files")
    op.drop_index("ix_lease_grants_mailbox", table_name="lease_grants")
    op.drop_table("lease_grants")
    op.drop_table("mailbox_leases")
    op.drop_index("ix_workers_heartbeat_at", table_name="workers")
    op.drop_table("workers")
