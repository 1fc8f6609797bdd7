"""Turn casenet's database setting into the eventsourcing library's environment.

The library picks the store by ``PERSISTENCE_MODULE`` and its application recorder
by ``APPLICATION_RECORDER_TOPIC``: casenet's recorder for that store (see
``persistence``), which also brings the store's ``Database`` for casenet's tables.
"""

from __future__ import annotations

from casenet.settings import DatabaseSettings

#: Seconds to wait for a PostgreSQL connection before giving up with a clear error.
CONNECT_TIMEOUT_SECONDS = 5
#: Seconds a writer waits for the events table lock (PostgreSQL) or the file lock (SQLite).
LOCK_TIMEOUT_SECONDS = 10


def eventsourcing_env(database: DatabaseSettings) -> dict[str, str]:
    """The library settings that select and configure the store for ``database``."""
    if database.kind == "sqlite":
        assert database.path is not None
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "APPLICATION_RECORDER_TOPIC": (
                "casenet.infrastructure.persistence.sqlite:CasenetSQLiteRecorder"
            ),
            "SQLITE_DBNAME": str(database.path),
            "SQLITE_LOCK_TIMEOUT": str(LOCK_TIMEOUT_SECONDS),
            "CREATE_TABLE": "y",
        }
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": database.dbname,
        "POSTGRES_HOST": database.host,
        "POSTGRES_PORT": str(database.port),
        "POSTGRES_USER": database.user,
        "POSTGRES_PASSWORD": database.password,
        "POSTGRES_CONNECT_TIMEOUT": str(CONNECT_TIMEOUT_SECONDS),
        "POSTGRES_LOCK_TIMEOUT": str(LOCK_TIMEOUT_SECONDS),
        # Few idle connections per process (group commit needs few), more under load.
        "POSTGRES_POOL_SIZE": "2",
        "POSTGRES_MAX_OVERFLOW": "18",
        "POSTGRES_PRE_PING": "n",
        # Concurrent saves commit together, under the library's table lock.
        "APPLICATION_RECORDER_TOPIC": (
            "casenet.infrastructure.persistence.postgres:CasenetPostgresRecorder"
        ),
        "CREATE_TABLE": "y",
    }
