from tests.archive.conftest import setup  # noqa: F401 - the same database + storage fixture (SQLite, PostgreSQL)
