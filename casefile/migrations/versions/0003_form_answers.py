"""form answers stored per field (key, label, kind, value, how read, warnings)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 23:30:00

Every parsed form gets one row per field of its profile, in form order. Existing forms are carried over from
form_results.data (kept as it is, so nothing is lost and a downgrade only drops the new table); their "how read"
is "unknown", as it was not recorded then.
"""

from typing import Any, Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: Union[str, Sequence[str], None] = "0002"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    form_answers = op.create_table(
        "form_answers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("form_result_id", sa.Integer(), nullable=False),
        sa.Column("intake_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.JSON(), nullable=True),
        sa.Column("text_value", sa.Text(), nullable=True),
        sa.Column("read_by", sa.String(length=32), nullable=False),
        sa.Column("warnings", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["form_result_id"],
            ["form_results.id"],
        ),
        sa.ForeignKeyConstraint(
            ["intake_id"],
            ["intake_records.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("form_result_id", "key", name="uq_form_answer_key"),
    )
    op.create_index(op.f("ix_form_answers_form_result_id"), "form_answers", ["form_result_id"], unique=False)
    op.create_index(op.f("ix_form_answers_intake_id"), "form_answers", ["intake_id"], unique=False)
    _carry_over(form_answers)


def _carry_over(form_answers: sa.Table) -> None:
    from postmottak.parsers.forms.answers import answers_from_values
    from postmottak.parsers.forms.profile import DEFAULT_PROFILE_NAME, load_profile

    connection = op.get_bind()
    form_results = sa.table(
        "form_results",
        sa.column("id", sa.Integer()),
        sa.column("intake_id", sa.Integer()),
        sa.column("profile", sa.String()),
        sa.column("data", sa.JSON()),
    )
    rows: list[dict[str, Any]] = []
    for result_id, intake_id, profile_name, data in connection.execute(
        sa.select(form_results.c.id, form_results.c.intake_id, form_results.c.profile, form_results.c.data)
    ):
        data = data or {}
        try:
            profile = load_profile(profile_name or DEFAULT_PROFILE_NAME)
        except (ValueError, OSError):
            profile = None
        if profile is not None:
            answers = [a.model_dump(mode="json") for a in answers_from_values(profile, data, read_by="unknown")]
        else:  # a profile no longer known: keep its extra keys as text answers
            answers = [
                {"key": key, "label": key, "kind": "text", "value": value, "read_by": "unknown", "warnings": []}
                for key, value in (data.get("extra_fields") or {}).items()
            ]
        for position, answer in enumerate(answers):
            text_value = answer["value"] if answer["kind"] == "text" and isinstance(answer["value"], str) else None
            rows.append(
                {
                    **answer,
                    "text_value": text_value,
                    "form_result_id": result_id,
                    "intake_id": intake_id,
                    "position": position,
                }
            )
        if len(rows) >= 1000:
            op.bulk_insert(form_answers, rows)
            rows = []
    if rows:
        op.bulk_insert(form_answers, rows)


def downgrade() -> None:
    op.drop_index(op.f("ix_form_answers_intake_id"), table_name="form_answers")
    op.drop_index(op.f("ix_form_answers_form_result_id"), table_name="form_answers")
    op.drop_table("form_answers")
