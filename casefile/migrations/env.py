"""Alembic environment: runs on the connection handed over by casefile.migrate (with its transaction options),
or on the URL when Alembic's own command line is used."""

from alembic import context
from sqlalchemy import create_engine

from postmottak.casefile.models import Base

config = context.config
target_metadata = Base.metadata


def run() -> None:
    connection = config.attributes.get("connection")
    options = dict(config.attributes.get("configure_options", {}))
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True, **options)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("alembic: no sqlalchemy.url configured and no connection handed over")
    engine = create_engine(url)
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True, **options)
        with context.begin_transaction():
            context.run_migrations()


run()
