"""indexes for the receipts rate limit (lower(to_address)) and for pending IMAP moves

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 22:10:00

`sent_recently` compares lower(to_address), which the plain to_address index cannot serve; `pending_moves` wants
the few locations not yet moved, not every location of the folder's epoch.
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: Union[str, Sequence[str], None] = "0001"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_index("ix_receipts_to_address_lower", "receipts", [sa.text("lower(to_address)")], unique=False)
    op.create_index(
        "ix_mail_locations_pending_move",
        "mail_locations",
        ["source_key", "uidvalidity"],
        unique=False,
        sqlite_where=sa.text("moved_at IS NULL"),
        postgresql_where=sa.text("moved_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_mail_locations_pending_move", table_name="mail_locations")
    op.drop_index("ix_receipts_to_address_lower", table_name="receipts")
