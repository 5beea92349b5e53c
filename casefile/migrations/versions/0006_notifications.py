"""staff notifications: incident state for alerts and the daily digest, and per-person opt-outs

Revision ID: 0006
Revises: 0002
Create Date: 2026-12-01 23:55:00
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: Union[str, Sequence[str], None] = "0005"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "notification_state",
        sa.Column("key", sa.String(length=64), primary_key=True),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("seen", sa.BigInteger(), nullable=False, server_default="0"),
    )
    op.create_table(
        "notification_opt_outs",
        sa.Column("username", sa.String(length=128), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("notification_opt_outs")
    op.drop_table("notification_state")
