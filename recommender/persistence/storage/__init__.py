"""The bot's database: movie catalog, member ratings and lists, model versions, retrain outcomes.

Every SQL string of the project lives in this package, always parameterised. Two backends run the
same SQL and the same numbered migrations (:mod:`.migrations`): SQLite (aiosqlite, the embedded
default: a path) and PostgreSQL (asyncpg: a ``postgresql://`` URL, for several bot processes and a
trainer on another machine sharing one database).

Durability on SQLite: the database runs in WAL mode with ``synchronous=NORMAL``. A commit then
reaches the WAL file through ``write()`` before the call returns, so a rating whose call returned
survives the bot process being killed (even with SIGKILL): the data sits in the operating system's
page cache and the WAL is replayed on the next open. What NORMAL gives up is only the ``fsync`` per
commit, so a power cut or kernel crash can lose the last few commits; ``synchronous="FULL"`` closes
that gap at several times the cost per rating. On PostgreSQL a returned call is committed on the
server with the server's own durability settings.
"""

from recommender.persistence.errors import StorageCorrupt, StorageError
from recommender.persistence.storage._catalogue import ADDED_ID_BASE, AddedMovie, SetAside, SwitchCounts
from recommender.persistence.storage._facade import Storage, StoredRating
from recommender.persistence.storage._lists import ImportCounts
from recommender.persistence.storage._nights import StoredNight
from recommender.persistence.storage._reader import read_added_movies, read_member_ratings
from recommender.persistence.storage._runs import LockOwner
from recommender.persistence.storage.migrations import MIGRATIONS, SCHEMA_VERSION

__all__ = [
    "ADDED_ID_BASE",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "AddedMovie",
    "ImportCounts",
    "LockOwner",
    "SetAside",
    "Storage",
    "StorageCorrupt",
    "StorageError",
    "StoredNight",
    "StoredRating",
    "SwitchCounts",
    "read_added_movies",
    "read_member_ratings",
]
