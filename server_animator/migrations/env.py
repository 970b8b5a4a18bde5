"""Alembic environment: the engine comes from the caller (``server_animator.db.migrate``)."""

from alembic import context
from sqlmodel import SQLModel

from server_animator import models  # noqa: F401  (registers the tables on SQLModel.metadata)

engine = context.config.attributes["engine"]
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=SQLModel.metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
