"""The energy archive: the daily, monthly and (Tapo) hourly figures meters hold, kept in SQLite
after the meters have forgotten them.

Kasa plugs keep a month or two of days, and a reset or a firmware update empties a meter; run
from cron, `energy --all --archive` keeps what each meter (a device, or one strip outlet) holds
in a file of the user's. Each figure is keyed by device id, outlet id ('' for a device itself)
and date (an hour: "2025-06-01T13", local), so storing the same figures again changes nothing. A figure is only ever raised: one
the meter now reports lower (a reset since) or no longer holds is kept as it was, and what was
seen goes into ``events`` once (``reset`` or ``gap``), never a number made up for it.

The file has a schema version (``PRAGMA user_version``): 1 had days and months, 2 adds ``hours``
(and ``hour`` events); a version-1 file is migrated when it is next opened for writing, and read
as it is (with no hours) until then. Writes happen in one short transaction
after every device has answered (``BEGIN IMMEDIATE``, waiting up to ``BUSY_SECONDS`` for
another run's), so two cron jobs take turns, and SQLite's rollback journal keeps a crash
harmless. That journal, rather than WAL, because a read-only look (`doctor`, a history) then
leaves no ``-wal`` or ``-shm`` file behind, and writes are few and quick. Any SQLite failure is
one ``ArchiveError``, with nothing written. sqlite3 is imported on first use only.
"""

from __future__ import annotations

import datetime
from collections import Counter
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from tpcloud.capabilities.energy import ARCHIVE, DAILY, HOURLY, MONTHLY, Held, History
from tpcloud.devices import Target
from tpcloud.errors import ArchiveError

if TYPE_CHECKING:
    import sqlite3

SCHEMA_VERSION = 2
# How long a run waits for another one's write to finish.
BUSY_SECONDS = 30.0
_HOURS = """CREATE TABLE hours (
        device_id TEXT NOT NULL, outlet_id TEXT NOT NULL, hour TEXT NOT NULL, kwh REAL NOT NULL,
        recorded_at TEXT NOT NULL, PRIMARY KEY (device_id, outlet_id, hour)) WITHOUT ROWID"""
_EVENTS = """CREATE TABLE events (
        device_id TEXT NOT NULL, outlet_id TEXT NOT NULL,
        period TEXT NOT NULL CHECK (period IN ('day', 'month', 'hour')), date TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('reset', 'gap')),
        archived_kwh REAL NOT NULL, device_kwh REAL, seen_at TEXT NOT NULL,
        PRIMARY KEY (device_id, outlet_id, period, date, kind)) WITHOUT ROWID"""
# The tables of the present schema (version 2).
_SCHEMA = (
    """CREATE TABLE meters (
        device_id TEXT NOT NULL, outlet_id TEXT NOT NULL, name TEXT NOT NULL,
        PRIMARY KEY (device_id, outlet_id))""",
    """CREATE TABLE days (
        device_id TEXT NOT NULL, outlet_id TEXT NOT NULL, date TEXT NOT NULL, kwh REAL NOT NULL,
        recorded_at TEXT NOT NULL, PRIMARY KEY (device_id, outlet_id, date)) WITHOUT ROWID""",
    """CREATE TABLE months (
        device_id TEXT NOT NULL, outlet_id TEXT NOT NULL, month TEXT NOT NULL, kwh REAL NOT NULL,
        recorded_at TEXT NOT NULL, PRIMARY KEY (device_id, outlet_id, month)) WITHOUT ROWID""",
    _EVENTS,
    _HOURS,
)
# From each older version to the next: version 1 -> 2 adds ``hours``, and remakes ``events``
# (SQLite cannot change a CHECK in place) so that it takes 'hour'.
_MIGRATIONS = {
    1: (
        _HOURS,
        "ALTER TABLE events RENAME TO events_v1",
        _EVENTS,
        "INSERT INTO events SELECT * FROM events_v1",
        "DROP TABLE events_v1",
    ),
}
# Per period: its table, the column of its dates, and what events call it.
_TABLES = {DAILY: ("days", "date", "day"), MONTHLY: ("months", "month", "month"), HOURLY: ("hours", "hour", "hour")}
_MOVE_ASIDE = "move it aside (a new one is started), or choose another file with --db or TPCLOUD_ENERGY_DB"


@dataclass(frozen=True)
class Kept:
    """What one run did with one meter's figures: how many days and months (and hours) it holds,
    how many were new to the archive or raised there, and the resets and gaps seen for the first
    time."""

    days: int
    months: int
    hours: int = 0
    added: int = 0
    updated: int = 0
    resets: int = 0
    gaps: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Archived:
    """A meter's history from the archive alone (`energy --from/--to`): what a ``Done`` is for
    the device's, without a route."""

    target: Target
    result: History

    def to_dict(self) -> dict[str, Any]:
        return {**self.target.identity(), **self.result.to_dict()}


def _migrations(version: int) -> Iterator[str]:
    """The statements that bring a file of schema VERSION to SCHEMA_VERSION."""
    for step in range(version, SCHEMA_VERSION):
        yield from _MIGRATIONS[step]


def _key(target: Target) -> tuple[str, str]:
    return target.device.device_id, target.outlet.id if target.outlet else ""


def _stamp(when: float) -> str:
    return datetime.datetime.fromtimestamp(when, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Archive:
    """One open archive file: for writing (``for_writing``) or only for reading (``for_reading``)."""

    def __init__(self, path: Path, db: "sqlite3.Connection", version: int) -> None:
        self.path = path
        self._db = db
        self._empty = version == 0  # a file with no schema yet (one opened only to be read)
        self._version_read = version

    @classmethod
    def for_writing(cls, path: Path) -> "Archive":
        """The archive at PATH, made (folder, file, schema) when there is none; checked now that it
        can be written, so a run learns it before it asks any device."""
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise ArchiveError(f"cannot make the folder of the energy archive {path}: {exc.strerror}",
                               hint="choose another file with --db or TPCLOUD_ENERGY_DB") from None
        archive = cls._open(path, write=True)
        try:
            with archive._failing("cannot write"):
                archive._db.execute("BEGIN IMMEDIATE")
                version = archive._version()  # again: another run may have made the schema meanwhile
                for statement in _SCHEMA if version == 0 else _migrations(version):
                    archive._db.execute(statement)
                # Writing the version, the same or a new one, proves the file and its folder writable.
                archive._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                archive._db.execute("COMMIT" if version < SCHEMA_VERSION else "ROLLBACK")
        except BaseException:
            archive.close()  # an open transaction ends with the connection, undone
            raise
        archive._empty, archive._version_read = False, SCHEMA_VERSION
        return archive

    @classmethod
    def for_reading(cls, path: Path) -> "Archive":
        """The archive at PATH, opened read-only: ArchiveError when there is none."""
        if not path.exists():
            raise ArchiveError(f"there is no energy archive at {path}",
                               hint="`tpcloud energy --all --archive` starts one; --db names another file")
        return cls._open(path, write=False)

    @classmethod
    def _open(cls, path: Path, *, write: bool) -> "Archive":
        import sqlite3

        try:
            if write:
                db = sqlite3.connect(path, timeout=BUSY_SECONDS, isolation_level=None)
            else:
                db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_SECONDS,
                                     isolation_level=None)
        except sqlite3.Error as exc:
            verb = "cannot write" if write else "cannot read"
            raise ArchiveError(f"{verb} the energy archive {path}: {exc}",
                               hint="check the folder's permissions, or choose another file with --db or TPCLOUD_ENERGY_DB") from None
        archive = cls(path, db, 0)
        try:
            with archive._failing("cannot read"):
                version = archive._version()
        except ArchiveError:
            db.close()
            raise
        archive._empty, archive._version_read = version == 0, version
        return archive

    def _version(self) -> int:
        """The file's schema version, after checking it is one this tpcloud knows. One statement
        reads it and the tables together, so that another run making the schema meanwhile is
        seen whole or not at all."""
        version, tables = self._db.execute(
            "SELECT (SELECT user_version FROM pragma_user_version), (SELECT count(*) FROM sqlite_master)"
        ).fetchone()
        if version > SCHEMA_VERSION:
            raise ArchiveError(f"the energy archive {self.path} was written by a newer tpcloud (schema {version}, "
                               f"this one knows {SCHEMA_VERSION})", hint="update tpcloud, or choose another file with --db")
        if version == 0 and tables:
            raise ArchiveError(f"{self.path} is an SQLite database, but not a tpcloud energy archive", hint=_MOVE_ASIDE)
        return version

    @contextmanager
    def _failing(self, verb: str) -> Iterator[None]:
        """Any SQLite failure inside as one ArchiveError about this file."""
        import sqlite3

        try:
            yield
        except sqlite3.Error as exc:
            damaged = isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError)
            raise ArchiveError(f"{verb} the energy archive {self.path}: {exc}",
                               hint=_MOVE_ASIDE if damaged else "check the file's and its folder's permissions") from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "Archive":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing --------------------------------------------------------------------------------

    @contextmanager
    def writing(self) -> Iterator[None]:
        """One transaction for everything kept inside it: all of it, or (on any failure) nothing."""
        with self._failing("cannot write"):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.rollback()
                raise
            self._db.execute("COMMIT")

    def keep(self, target: Target, held: Held, now: float) -> Kept:
        """Store what TARGET's meter HELD (inside ``writing``); NOW stamps what changes."""
        key, stamp = _key(target), _stamp(now)
        with self._failing("cannot write"):
            self._db.execute(
                "INSERT INTO meters VALUES (?, ?, ?) ON CONFLICT (device_id, outlet_id) "
                "DO UPDATE SET name = excluded.name WHERE name IS NOT excluded.name", (*key, target.full_name),
            )
            counts: Counter[str] = Counter()
            self._keep(DAILY, key, held.days, held.days_from, stamp, counts)
            self._keep(MONTHLY, key, held.months, held.months_from, stamp, counts)
            if held.hours_from is not None:
                self._keep(HOURLY, key, held.hours, held.hours_from, stamp, counts)
        return Kept(len(held.days), len(held.months), len(held.hours), **counts)

    def _keep(self, period: str, key: tuple[str, str], figures: tuple[tuple[str, float], ...], since: str,
              stamp: str, counts: Counter[str]) -> None:
        """FIGURES of one PERIOD into its table: new ones added, higher ones raised; a lower one
        is a reset, and one stored from SINCE on that the meter no longer holds a gap."""
        table, column, kind = _TABLES[period]
        stored = dict(self._db.execute(
            f"SELECT {column}, kwh FROM {table} WHERE device_id = ? AND outlet_id = ? AND {column} >= ?", (*key, since)
        ))
        for label, kwh in figures:
            old = stored.get(label)
            if old is None or kwh > old:
                self._db.execute(
                    f"INSERT INTO {table} VALUES (?, ?, ?, ?, ?) ON CONFLICT (device_id, outlet_id, {column}) "
                    "DO UPDATE SET kwh = excluded.kwh, recorded_at = excluded.recorded_at", (*key, label, kwh, stamp),
                )
                counts["added" if old is None else "updated"] += 1
            elif kwh < old:
                counts["resets"] += self._event(key, kind, label, "reset", old, kwh, stamp)
        held = dict(figures)
        for label, old in stored.items():
            if label not in held:
                counts["gaps"] += self._event(key, kind, label, "gap", old, None, stamp)

    def _event(self, key: tuple[str, str], period: str, label: str, kind: str, archived: float,
               device: float | None, stamp: str) -> int:
        """Note a reset or a gap, the first time it is seen; 1 if it was new."""
        return self._db.execute("INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                (*key, period, label, kind, archived, device, stamp)).rowcount

    # -- reading --------------------------------------------------------------------------------

    def figures(self, target: Target, period: str, first: str, last: str) -> dict[str, float]:
        """TARGET's archived figures of PERIOD dated FIRST to LAST ("2025-06-01", "2025-06" or
        "2025-06-01T13"); a version-1 file has no hours."""
        if self._empty or (period == HOURLY and self._version_read < 2):
            return {}
        table, column, _ = _TABLES[period]
        with self._failing("cannot read"):
            return dict(self._db.execute(
                f"SELECT {column}, kwh FROM {table} WHERE device_id = ? AND outlet_id = ? AND {column} BETWEEN ? AND ? "
                f"ORDER BY {column}", (*_key(target), first, last),
            ))

    def history(self, parts: list[Target], period: str, first: str | None, last: str) -> History:
        """The archive's figures of PARTS (one meter, or a strip's outlets: added up) from FIRST
        (None: the oldest) to LAST."""
        if period == HOURLY:
            start, end = first or "", f"{last}T23"
        else:
            start, end = (first or "", last) if period == DAILY else ((first or "")[:7], last[:7])
        histories = []
        for part in parts:
            found = self.figures(part, period, start, end)
            histories.append(History(period, None, None, tuple(found.items()), (ARCHIVE,) * len(found), (first, last)))
        return histories[0] if len(histories) == 1 else History.of_outlets(histories)

    def summary(self) -> dict[str, int]:
        """How many meters, days, months, hours and events the archive holds (a version-1 file,
        read without being migrated, has no hours)."""
        tables = ("meters", "days", "months", "hours", "events")
        if self._empty:
            return dict.fromkeys(tables, 0)
        with self._failing("cannot read"):
            present = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            return {table: self._db.execute(f"SELECT count(*) FROM {table}").fetchone()[0] if table in present else 0
                    for table in tables}
