"""The `energy` command: what meters read now (one line, or a table of many with their total),
their daily, monthly or hourly (Tapo) history (the device's, with the archive's figures where the device no
longer holds them), and the archive itself: `--archive` stores what the meters hold, `--from` and
`--to` read it back. As text (a chart beside a history on a terminal), JSON or CSV.

The meters are tpcloud/capabilities/energy.py and the archive tpcloud/archive.py; this module
gathers the options, checks what needs no device, runs each exchange on every target at once
(the service's ``select``, ``outlets_apart`` and ``run_many``) and prints what came back.
"""

from __future__ import annotations

import datetime
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Optional

import typer

from tpcloud import errors
from tpcloud.cli.common import HOST_OPTION, NAMES_HELP, VIA_OPTION, Via, each_result, note_route, run, usage_failure
from tpcloud.completion import names_and_groups


class Format(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


def energy(
    ctx: typer.Context,
    names: Optional[list[str]] = typer.Argument(
        None, metavar="[NAME...]", help=NAMES_HELP, autocompletion=names_and_groups, show_default=False,
    ),
    every: bool = typer.Option(False, "--all", help="Every meter of the account, each strip outlet on its own; devices without one are passed over."),
    daily: bool = typer.Option(False, "--daily", help="Energy per day of a month."),
    monthly: bool = typer.Option(False, "--monthly", help="Energy per month of a year."),
    hourly: bool = typer.Option(False, "--hourly", help="Energy per hour of the last 8 days (Tapo meters; Kasa meters keep no hours)."),
    month: Optional[int] = typer.Option(None, "--month", metavar="M", help="With --daily: the month, 1-12 [default: this one]."),
    year: Optional[int] = typer.Option(None, "--year", metavar="Y", help="With --daily or --monthly: the year [default: this one]."),
    start: Optional[str] = typer.Option(None, "--from", metavar="DATE", help="With --daily, --monthly or --hourly: from the archive alone, from DATE (2025-01-01, or 2025-01)."),
    end: Optional[str] = typer.Option(None, "--to", metavar="DATE", help="With --daily, --monthly or --hourly: from the archive alone, up to DATE [default: today]."),
    archive: bool = typer.Option(False, "--archive", help="Store every daily, monthly and hourly figure the meters still hold in the archive."),
    db: Optional[Path] = typer.Option(None, "--db", metavar="FILE", help="The archive [default: ~/.local/share/tpcloud/energy.sqlite, or TPCLOUD_ENERGY_DB]."),
    form: Optional[Format] = typer.Option(None, "--format", help="table (with a chart beside a history on a terminal), json or csv [default: table]."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts (the same as --format json)."),
    via: Via = VIA_OPTION,
    host: Optional[str] = HOST_OPTION,
) -> None:
    """Show what meters draw and have used, or their history; keep that history in an archive.

    Power in W, voltage in V, current in A, energy in kWh, whatever units the device reports. One
    NAME prints one line (a strip named whole: the sum of its outlets); several, a group or --all
    print a table with a TOTAL row, each strip outlet a row. A device without a meter exits 5.
    """
    from tpcloud.capabilities import energy as capability

    today = datetime.date.fromtimestamp(ctx.obj.clock())
    try:
        shape = _shape(form, as_json)
        asked = capability.Asked(
            daily, monthly, month, year,
            start=capability.day_given("--from", start) if start is not None else None,
            end=capability.day_given("--to", end, last=True) if end is not None else None, hourly=hourly,
        )
        asked.check(today)
        _check(names or [], every, asked, archive, db)
    except errors.TpcloudError as exc:
        raise usage_failure(ctx, exc) from None
    if archive:
        _archive(ctx, names or [], every, today, db, shape, via=via, host=host)
    elif asked.ranged:
        _from_archive(ctx, names or [], every, asked, today, db, shape)
    else:
        _measure(ctx, names or [], every, asked, today, db, shape, via=via, host=host)


def _shape(form: Optional[Format], as_json: bool) -> Format:
    if as_json and form not in (None, Format.json):
        raise errors.UsageError("--json is --format json: give one or the other")
    return Format.json if as_json else form or Format.table


def _check(names: list[str], every: bool, asked: Any, archive: bool, db: Optional[Path]) -> None:
    """The combinations of names and options that make no sense, before anything is read."""
    if every and names:
        raise errors.UsageError("--all covers every meter; name none with it")
    if not names and not every:
        raise errors.UsageError("name a device, outlet or group, or pass --all")
    if archive and (asked.period is not None or asked.ranged):
        raise errors.UsageError("--archive stores every day, month and hour the meters hold: it takes no --daily, --monthly, --hourly, --from or --to")
    if db is not None and not archive and asked.period is None:
        raise errors.UsageError("--db goes with --archive, --daily, --monthly or --hourly")


async def _selected(service: Any, names: list[str], every: bool, *, apart: bool = False) -> Any:
    """The targets NAMES or EVERY mean; a strip named whole is its outlets, unless one NAME named
    it directly (APART: always), as the archive keeps each outlet's figures."""
    selection = await service.select(names, every=every)
    return service.outlets_apart(selection) if apart or not selection.single else selection


def _metered(outcomes: list[Any], every: bool) -> list[Any]:
    """OUTCOMES, without the devices `--all` took in that have no meter."""
    return [o for o in outcomes if not (every and isinstance(o.error, errors.NotSupported))]


def _measure(ctx: typer.Context, names: list[str], every: bool, asked: Any, today: datetime.date,
             db: Optional[Path], shape: Format, *, via: Via, host: Optional[str]) -> None:
    """The reading now, or the history asked for, merged with the archive's where there is one."""
    from tpcloud.capabilities import energy as capability
    from tpcloud.output import HISTORY_HEADER, READING_HEADER, history_rows, history_text, reading_rows, reading_text, readings_table

    factory = ctx.obj
    period = asked.period
    hour = datetime.datetime.fromtimestamp(factory.clock()).strftime("%Y-%m-%dT%H")

    async def work(service: Any) -> Any:
        selection = await _selected(service, names, every)
        store = _stored(factory, db) if period is not None else None
        try:
            exchange = capability.exchange(asked, today, None if store is None else _lookup(store, asked, today), hour)
            outcomes = await service.run_many(selection.targets, exchange)
        finally:
            if store is not None:
                store.close()
        return selection, _metered(outcomes, every)

    selection, outcomes = run(ctx, work, via=via.value, host=host)
    if period is None:
        text = reading_text
        together = _csv(READING_HEADER, reading_rows) if shape is Format.csv else None if selection.single else readings_table
    else:
        width = factory.chart_width() if shape is Format.table else None

        def text(name: str, history: Any) -> str:
            return history_text(name, history, width)

        together = _csv(HISTORY_HEADER, history_rows) if shape is Format.csv else None

    def line(done: Any) -> str:
        note_route(ctx, done.route)
        return text(done.target.full_name, done.result)

    each_result(ctx, selection, outcomes, shape is Format.json, one_json=lambda done: done.to_dict(), text=line,
                together=together)


def _lookup(store: Any, asked: Any, today: datetime.date) -> Callable[[Any], Any]:
    """What a history exchange looks a meter's figures up with: STORE's, of the month (--daily),
    year (--monthly) or last days (--hourly) asked."""
    from tpcloud.capabilities.energy import HOURLY_DAYS

    year, month = asked.year or today.year, asked.month or today.month
    if asked.hourly:
        first, last = (today - datetime.timedelta(days=HOURLY_DAYS - 1)).isoformat(), f"{today.isoformat()}T23"
    elif asked.daily:
        first, last = f"{year}-{month:02d}-01", f"{year}-{month:02d}-31"
    else:
        first, last = f"{year}-01", f"{year}-12"
    return lambda part: store.figures(part, asked.period, first, last)


def _stored(factory: Any, db: Optional[Path]) -> Any:
    """The archive to read (--db, else the default one, which may not exist yet: then None)."""
    path = db or factory.settings.energy_db
    if db is None and not path.exists():
        return None
    from tpcloud.archive import Archive

    factory.log(f"energy archive: {path}")
    return Archive.for_reading(path)


def _from_archive(ctx: typer.Context, names: list[str], every: bool, asked: Any, today: datetime.date,
                  db: Optional[Path], shape: Format) -> None:
    """`--from`/`--to`: the archive's figures alone (no device is asked); `--all`: every meter it
    has figures of in that span. Hours of a Kasa meter: it keeps none (exit 5), as when asked."""
    from tpcloud.capabilities import energy as capability
    from tpcloud.output import HISTORY_HEADER, history_rows, history_text

    factory = ctx.obj
    first = asked.start.isoformat() if asked.start is not None else None
    last = (asked.end or today).isoformat()

    async def work(service: Any) -> Any:
        from tpcloud.archive import Archive, Archived
        from tpcloud.service import Outcome

        selection = await _selected(service, names, every)
        outcomes = []
        with Archive.for_reading(db or factory.settings.energy_db) as store:
            for t in selection.targets:
                if asked.hourly and t.device.dialect != "smart":
                    outcomes.append(Outcome(t, error=errors.NotSupported(capability.NO_HOURS)))
                else:
                    found = Archived(t, store.history(capability.parts(t), asked.period, first, last))
                    outcomes.append(Outcome(t, found))
        return selection, [o for o in _metered(outcomes, every) if o.error is not None or o.result.result.entries or not every]

    selection, outcomes = run(ctx, work)
    width = factory.chart_width() if shape is Format.table else None
    each_result(ctx, selection, outcomes, shape is Format.json, one_json=lambda found: found.to_dict(),
                text=lambda found: history_text(found.target.full_name, found.result, width),
                together=_csv(HISTORY_HEADER, history_rows) if shape is Format.csv else None)


def _archive(ctx: typer.Context, names: list[str], every: bool, today: datetime.date, db: Optional[Path],
             shape: Format, *, via: Via, host: Optional[str]) -> None:
    """`--archive`: every figure each meter holds into the archive, in one transaction after all
    have answered. The names are resolved and the file checked writable before any device is asked."""
    from tpcloud.capabilities import energy as capability
    from tpcloud.output import KEPT_HEADER, kept_rows, kept_text

    factory = ctx.obj

    async def work(service: Any) -> Any:
        from tpcloud.archive import Archive
        from tpcloud.service import Done, Outcome

        selection = await _selected(service, names, every, apart=True)
        path = db or factory.settings.energy_db
        with Archive.for_writing(path) as store:
            factory.log(f"energy archive: {path}")
            outcomes = _metered(await service.run_many(selection.targets, capability.holdings(today)), every)
            now = factory.clock()
            with store.writing():
                kept = [o if o.error is not None else
                        Outcome(o.target, Done(o.target, store.keep(o.target, o.result.result, now), o.result.route))
                        for o in outcomes]
        return selection, kept

    selection, outcomes = run(ctx, work, via=via.value, host=host)

    def line(done: Any) -> str:
        note_route(ctx, done.route)
        return kept_text(done.target.full_name, done.result)

    each_result(ctx, selection, outcomes, shape is Format.json, one_json=lambda done: done.to_dict(), text=line,
                together=_csv(KEPT_HEADER, kept_rows) if shape is Format.csv else None)


def _csv(header: list[str], rows: Callable[[list[Any]], list[list[Any]]]) -> Callable[[list[Any]], str]:
    """What prints every result at once as CSV: HEADER, then ROWS(results)."""
    from tpcloud.output import csv_text

    return lambda results: csv_text(header, rows(results))
