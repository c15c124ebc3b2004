"""v0.1.0.b: run metadata (zcnas_runs), one row per run_study worker.

Revision ID: v0.1.0.b
Revises: v0.1.0.a
"""

from alembic import op
import sqlalchemy as sa


revision = "v0.1.0.b"
down_revision = "v0.1.0.a"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "zcnas_runs",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("study_name", sa.String(512), nullable=False),
        sa.Column("config_sha", sa.String(16), nullable=False),
        sa.Column("config_json", sa.Text(), nullable=False),
        sa.Column("zcnas_version", sa.String(32), nullable=False),
        sa.Column("optuna_version", sa.String(32), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("n_trials_target", sa.Integer(), nullable=False),
        sa.Column("trials_run", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_zcnas_runs_study", "zcnas_runs", ["study_name"])


def downgrade() -> None:
    op.drop_index("ix_zcnas_runs_study", table_name="zcnas_runs")
    op.drop_table("zcnas_runs")
