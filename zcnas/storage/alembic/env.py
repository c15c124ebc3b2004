"""Alembic environment for zcnas's own tables (version table ``zcnas_alembic_version``)."""

from __future__ import annotations

from alembic import context

from zcnas.storage._models import Base


VERSION_TABLE = "zcnas_alembic_version"


def _include_object(obj, name, type_, reflected, compare_to):  # noqa: ANN001,ANN202
    # Only zcnas_* tables are ours; Optuna's tables in the same database are left alone.
    return type_ != "table" or name.startswith("zcnas_")


def run_migrations_online() -> None:
    connection = context.config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        render_as_batch=True,
        include_object=_include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
