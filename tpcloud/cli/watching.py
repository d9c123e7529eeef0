"""The commands that follow devices over time: `watch` prints a line per sample until it is
stopped, `wait` returns once a condition has held long enough. The loops, the hold and the rule
that asks the cloud at most once a minute are tpcloud/watching.py; here are the options, the
checks that need no device, and the printing.
"""

from __future__ import annotations

from typing import Any, Optional

import typer

from tpcloud import errors
from tpcloud.charts import sparkline
from tpcloud.cli.common import (
    HOST_OPTION, NAME_ARGUMENT, NAMES_ARGUMENT, VIA_OPTION, OnOff, Via, report, run, show, usage_failure,
)
from tpcloud.factory import Factory
from tpcloud.output import error_line

SPARK_WIDTH = 20

INTERVAL_HELP = "Time between two samples of a device (0.5s at least); through the cloud, a minute at least."


def _sparklines(factory: Factory, as_json: bool) -> bool:
    """Whether lines end with a sparkline: text on a terminal that can show it (``chart_width``)."""
    return not as_json and factory.chart_width() is not None


def _loop_hooks(ctx: typer.Context) -> dict[str, Any]:
    """How the loops report: each failure as its one line, and the cloud rule when it first applies."""
    factory: Factory = ctx.obj

    def slowed(name: str) -> None:
        report(factory, f"tpcloud: {name}: sampled through the cloud, so once a minute at most "
                        "(TP-Link blocks accounts that poll its cloud faster)")

    return {"failed": lambda exc: report(factory, error_line(exc), exc), "slowed": slowed}


def watch(
    ctx: typer.Context,
    names: list[str] = NAMES_ARGUMENT,
    interval: str = typer.Option("5s", "--interval", metavar="DURATION", help=INTERVAL_HELP),
    count: Optional[int] = typer.Option(None, "--count", metavar="N", help="Stop after N samples of each device."),
    duration: Optional[str] = typer.Option(None, "--duration", metavar="DURATION",
                                           help="Stop after this long (30s, 45m, 2h)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object per sample (NDJSON), for scripts."),
    via: Via = VIA_OPTION,
    host: Optional[str] = HOST_OPTION,
) -> None:
    """Print each device's power and state, a line per sample, until Ctrl-C, --count or --duration.

    A device without a meter shows on or off; a strip named whole shows each outlet. A device
    sampled through the cloud is asked at most once a minute, whatever --interval says. A sample
    that fails is a line on stderr and watching goes on: the exit code is 0 when every device
    answered at least once, else that of the first one that never did (130 after Ctrl-C).
    """
    from tpcloud import watching
    from tpcloud.output import json_line, sample_text

    try:
        every = watching.parse_interval(interval)
        span = None if duration is None else watching.parse_span(duration, "--duration")
        if count is not None and count < 1:
            raise errors.UsageError(f"--count {count}: give 1 or more")
    except errors.TpcloudError as exc:
        raise usage_failure(ctx, exc) from None
    factory: Factory = ctx.obj
    sparks = _sparklines(factory, as_json)
    recent: dict[Any, list[float]] = {}

    def shown(sample: Any) -> None:
        if as_json:
            show(ctx, json_line(sample.to_dict()))
            return
        line = sample_text(sample)
        if sparks and sample.reading is not None:
            powers = recent.setdefault(sample.target, [])
            powers[:] = [*powers, sample.power][-SPARK_WIDTH:]
            line += "  " + sparkline(powers, SPARK_WIDTH)
        show(ctx, line)

    async def work(service: Any) -> int:
        targets = service.outlets_apart(await service.select(names)).targets
        clock = watching.Clock(factory.clock, factory.ticks, factory.sleep)
        return await watching.watch(service, targets, interval=every, count=count, span=span, clock=clock,
                                    show=shown, **_loop_hooks(ctx))

    code = run(ctx, lambda service: watching.interruptible(work(service)), via=via.value, host=host)
    if code:
        raise typer.Exit(code)


def wait(
    ctx: typer.Context,
    name: str = NAME_ARGUMENT,
    power_below: Optional[float] = typer.Option(None, "--power-below", metavar="W", help="Until it draws less than W watts."),
    power_above: Optional[float] = typer.Option(None, "--power-above", metavar="W", help="Until it draws more than W watts."),
    state: Optional[OnOff] = typer.Option(None, "--state", help="Until it is on, or off."),
    offline: bool = typer.Option(False, "--offline", help="Until it cannot be reached."),
    online: bool = typer.Option(False, "--online", help="Until it answers."),
    hold: str = typer.Option("0", "--for", metavar="DURATION",
                             help="How long the condition must hold without a break (0: the first sample that meets it)."),
    timeout: str = typer.Option("4h", "--timeout", metavar="DURATION",
                                help="Give up after this long, with exit code 11 (not the global --timeout of each network wait)."),
    interval: str = typer.Option("10s", "--interval", metavar="DURATION", help=INTERVAL_HELP),
    via: Via = VIA_OPTION,
    host: Optional[str] = HOST_OPTION,
) -> None:
    """Wait until a device meets a condition (exactly one), held without a break for --for; then exit 0.

    A sample that breaks the condition starts the hold again, and so does one that fails (a line
    on stderr; waiting goes on), unless waiting cannot mend it: the login, the name, a device that
    refuses (no meter for --power-*), which end the wait with their exit code. --offline counts a
    device that cannot be reached or does not answer. With -v, each sample goes to stderr.
    Exit code 11 when --timeout passes first.
    """
    from tpcloud import watching
    from tpcloud.output import sample_text, unreached_text, waited_text

    try:
        condition = watching.condition_from(below=power_below, above=power_above, state=state.value if state else None,
                                            offline=offline, online=online)
        need = watching.parse_span(hold, "--for", zero=True)
        limit = watching.parse_span(timeout, "--timeout")
        every = watching.parse_interval(interval)
        if need >= limit:
            raise errors.UsageError(f"--for {hold} cannot be held within --timeout {timeout}")
    except errors.TpcloudError as exc:
        raise usage_failure(ctx, exc) from None
    factory: Factory = ctx.obj

    async def work(service: Any) -> Any:
        target = await service.resolve(name)

        def seen(sample: Any, error: Optional[errors.TpcloudError]) -> None:
            factory.log(sample_text(sample) if sample is not None
                        else unreached_text(target.full_name, factory.clock(), error))  # type: ignore[arg-type]

        clock = watching.Clock(factory.clock, factory.ticks, factory.sleep)
        await watching.wait(service, target, condition, hold=need, timeout=limit, interval=every, clock=clock,
                            seen=seen, **_loop_hooks(ctx))
        return target

    target = run(ctx, lambda service: watching.interruptible(work(service)), via=via.value, host=host)
    show(ctx, waited_text(target.full_name, condition, need))
