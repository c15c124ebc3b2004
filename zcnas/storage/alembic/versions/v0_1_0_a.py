"""v0.1.0.a: the score cache (zcnas_scores).

Revision ID: v0.1.0.a
Revises:
"""

from alembic import op
import sqlalchemy as sa


revision = "v0.1.0.a"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "zcnas_scores",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("space", sa.String(64), nullable=False),
        sa.Column("arch_key", sa.String(512), nullable=False),
        sa.Column("proxy", sa.String(128), nullable=False),
        sa.Column("proxy_version", sa.String(32), nullable=False),
        sa.Column("params_hash", sa.String(16), nullable=False),
        sa.Column("params_json", sa.Text(), nullable=False),
        sa.Column("batch_id", sa.String(64), nullable=False),
        sa.Column("batch_source", sa.String(512), nullable=False),
        sa.Column("batch_size", sa.Integer(), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("device", sa.String(64), nullable=False),
        sa.Column("zcnas_version", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=True),
        sa.UniqueConstraint(
            "space", "arch_key", "proxy", "proxy_version", "params_hash", "batch_id", "seed",
            name="uq_zcnas_scores_key",
        ),
    )
    op.create_index(
        "ix_zcnas_scores_lookup", "zcnas_scores", ["space", "proxy", "batch_id", "seed"]
    )


def downgrade() -> None:
    op.drop_index("ix_zcnas_scores_lookup", table_name="zcnas_scores")
    op.drop_table("zcnas_scores")
