"""The commands for what devices do by their own clock: countdown timers (`timer`; `switch --for`
sets them), schedules (`schedule`, and `schedule apply` from a file), and the clock itself
(`time`). Each gathers its names and options, checks what needs no device, runs a capability of
tpcloud/capabilities over the usual routes, and prints what came back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from tpcloud import errors
from tpcloud.cli.common import (
    HOST_OPTION, JSON_OPTION, NAMES_ARGUMENT, VIA_OPTION, Via, each_result, run, usage_failure,
)
from tpcloud.completion import SCHEDULE_VERBS, schedule_words


def _on_each(ctx: typer.Context, choose: Any, text: Any, *, as_json: bool, via: Via, host: Optional[str]) -> None:
    """Run, all at once, the exchange of each target CHOOSE(service) picks (it returns the
    Selection and the exchange for each of its targets), and print each result with
    TEXT(name, result)."""

    async def work(service: Any) -> Any:
        selection, exchanges = await choose(service)
        return selection, await service.run_each(exchanges)

    selection, outcomes = run(ctx, work, via=via.value, host=host)
    each_result(ctx, selection, outcomes, as_json, one_json=lambda done: done.to_dict(),
                text=lambda done: text(done.target.full_name, done.result))


def _each_named(names: list[str], exchange: Any, *, apart: bool = False) -> Any:
    """A chooser for ``_on_each``: the targets NAMES mean (each strip outlet on its own when
    APART), all with the one EXCHANGE."""

    async def choose(service: Any) -> Any:
        selection = await service.select(names)
        if apart:
            selection = service.outlets_apart(selection)
        return selection, dict.fromkeys(selection.targets, exchange)

    return choose


def timer(
    ctx: typer.Context,
    names: list[str] = NAMES_ARGUMENT,
    clear: bool = typer.Option(False, "--clear", help="Cancel the pending countdown."),
    as_json: bool = JSON_OPTION,
    via: Via = VIA_OPTION,
    host: Optional[str] = HOST_OPTION,
) -> None:
    """Show the countdown a device will switch by (as `switch --for` sets it), or cancel it.

    A strip's outlets each have their own; a strip named whole shows each outlet.
    """
    from tpcloud.capabilities import timer as capability
    from tpcloud.output import timer_text

    _on_each(ctx, _each_named(names, capability.exchange(clear=clear), apart=True), timer_text,
             as_json=as_json, via=via, host=host)


def schedule(
    ctx: typer.Context,
    words: list[str] = typer.Argument(
        ..., metavar="NAME [list|add on|off|rm ID|enable ID|disable ID|clear] | apply FILE [NAME...]",
        help="A device or outlet and what to do with its schedules (list when nothing is said); "
             "or `apply FILE` to make devices' rules what a schedule file says.",
        autocompletion=schedule_words, show_default=False,
    ),
    at: Optional[str] = typer.Option(None, "--at", metavar="HH:MM", help="add: the time of day (24-hour), or sunrise/sunset±OFFSET."),
    sunrise: bool = typer.Option(False, "--sunrise", help="add: at sunrise."),
    sunset: bool = typer.Option(False, "--sunset", help="add: at sunset."),
    offset: Optional[str] = typer.Option(None, "--offset", metavar="±DURATION", help="add: before (-) or after sunrise or sunset, such as -15m."),
    days: str = typer.Option("daily", "--days", metavar="DAYS", help="add: daily, weekdays, weekends, or days such as mon,wed,fri."),
    brightness: Optional[int] = typer.Option(None, "--brightness", metavar="N", help="add: a bulb's brightness (1-100 %) with on."),
    dry_run: bool = typer.Option(False, "--dry-run", help="apply: print what would change, change nothing."),
    as_json: bool = JSON_OPTION,
    via: Via = VIA_OPTION,
    host: Optional[str] = HOST_OPTION,
) -> None:
    """List, add, remove, enable or disable the schedules a device keeps, or apply a schedule file.

    Rules live on the device and fire by its clock (see `tpcloud time`), whether or not this
    machine is running. `schedule apply FILE` leaves rules that already match alone, so running
    it again changes nothing.
    """
    from tpcloud.output import applied_text, schedule_text

    try:
        if words[0].casefold() == "apply":
            choose, text = _applying(words, dry_run, ctx.obj.clock), applied_text
        else:
            exchange, name = _schedule_exchange(words, at, sunrise, sunset, offset, days, brightness, ctx.obj.clock)
            choose, text = _each_named([name], exchange), schedule_text
    except errors.TpcloudError as exc:
        raise usage_failure(ctx, exc) from None
    _on_each(ctx, choose, text, as_json=as_json, via=via, host=host)


def _schedule_exchange(words: list[str], at: Optional[str], sunrise: bool, sunset: bool, offset: Optional[str],
                       days: str, brightness: Optional[int], clock: Any) -> tuple[Any, str]:
    """The exchange `schedule NAME VERB [ARG]` runs, and the one NAME; UsageError for what is wrong."""
    import datetime

    from tpcloud.capabilities import schedule as capability
    from tpcloud.timespec import parse_days, parse_when, sun_when

    name, verb, *rest = [*words, "list"] if len(words) == 1 else words
    verb = verb.casefold()
    if verb not in SCHEDULE_VERBS:
        raise errors.UsageError(f"unknown schedule action {verb!r}: use {', '.join(SCHEDULE_VERBS)}, or apply FILE")
    wanted = {"add": 1, "rm": 1, "enable": 1, "disable": 1}.get(verb, 0)
    if len(rest) != wanted:
        what = "on or off" if verb == "add" else "a rule id (see `schedule NAME list`)" if wanted else "nothing more"
        raise errors.UsageError(f"schedule {verb} takes {what}")
    adding_options = at is not None or sunrise or sunset or offset is not None or brightness is not None
    if verb != "add":
        if adding_options:
            raise errors.UsageError("--at, --sunrise, --sunset, --offset and --brightness go with add")
        return (capability.listing() if verb == "list" else capability.editing(verb, rest[0] if rest else None)), name
    if (at is not None) + sunrise + sunset != 1:
        raise errors.UsageError("say when, once: --at HH:MM, --sunrise or --sunset")
    if offset is not None and not (sunrise or sunset):
        raise errors.UsageError("--offset goes with --sunrise or --sunset")
    when = parse_when(at) if at is not None else sun_when("sunrise" if sunrise else "sunset", offset)
    rule = capability.rule_from(rest[0].casefold(), when, parse_days(days), brightness=brightness)
    return capability.adding(rule, datetime.date.fromtimestamp(clock())), name


def _applying(words: list[str], dry_run: bool, clock: Any) -> Any:
    """For `schedule apply FILE [NAME...]`: a chooser for ``_on_each`` (the file is read now, so a
    mistake in it stops the command before any device is asked anything)."""
    import datetime

    from tpcloud import schedulefile
    from tpcloud.capabilities import schedule as capability

    if len(words) < 2:
        raise errors.UsageError("schedule apply takes a schedule file (TOML)")
    wanted = schedulefile.load(Path(words[1]))
    today = datetime.date.fromtimestamp(clock())
    exchanges = {name: capability.applying(rules, today, dry_run) for name, rules in wanted.items()}
    only = words[2:]

    async def choose(service: Any) -> Any:
        """Each name of the file (devices, outlets, groups) with its rules; limited to the targets
        ONLY names when it names any. A target the file names twice is an error, before anything
        changes."""
        from tpcloud.service import Selection

        keep = set((await service.select(only)).targets) if only else None
        chosen: dict[Any, Any] = {}
        for name, exchange in exchanges.items():
            for target in (await service.select([name])).targets:
                if keep is not None and target not in keep:
                    continue
                if target in chosen:
                    raise errors.UsageError(f"the schedule file names {target.full_name} twice")
                chosen[target] = exchange
        if not chosen:
            raise errors.UsageError("none of the names given is in the schedule file")
        return Selection(list(chosen), single=False), chosen

    return choose


def time(
    ctx: typer.Context,
    names: list[str] = NAMES_ARGUMENT,
    sync: bool = typer.Option(False, "--sync", help="Set the device's time and zone from this machine."),
    as_json: bool = JSON_OPTION,
    via: Via = VIA_OPTION,
    host: Optional[str] = HOST_OPTION,
) -> None:
    """Show a device's time and zone, and how far it is from this machine's; or set it (--sync).

    Schedules fire by the device's clock: one that drifted, or never learnt its zone, fires them
    at the wrong time. An outlet's clock is its strip's.
    """
    from tpcloud.capabilities import clock as capability
    from tpcloud.output import clock_text

    _on_each(ctx, _each_named(names, capability.exchange(ctx.obj.clock, sync=sync)), clock_text,
             as_json=as_json, via=via, host=host)
