"""consultations set up in the dashboard: the blank form's learned profile, deadline and keywords per case number;
a deadline time of day on cases (empty = the end of the deadline day)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 04:10:00
"""

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: Union[str, Sequence[str], None] = "0006"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "consultations",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("number", sa.String(length=32), nullable=False, unique=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("deadline", sa.Date(), nullable=False),
        sa.Column("deadline_time", sa.Time(), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("keywords", sa.JSON(), nullable=False),
        sa.Column("profile_toml", sa.Text(), nullable=False),
        sa.Column("blank_sha256", sa.String(length=64), nullable=False),
        sa.Column("blank_filename", sa.String(length=255), nullable=True),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    # Plain ALTER TABLE statements: no rewrite of the cases table, which other tables reference.
    op.add_column("cases", sa.Column("deadline_time", sa.Time(), nullable=True))
    if op.get_bind().dialect.name != "sqlite":  # SQLite does not enforce the length of a VARCHAR
        # A profile file's absolute path can be longer than a profile name.
        op.alter_column("cases", "form_profile", type_=sa.String(length=1024), existing_type=sa.String(length=128))


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column("cases", "form_profile", type_=sa.String(length=128), existing_type=sa.String(length=1024))
    op.drop_column("cases", "deadline_time")
    op.drop_table("consultations")
