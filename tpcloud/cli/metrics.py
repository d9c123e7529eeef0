"""`tpcloud metrics`: one pass over devices' states and meters, written for a collector."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any, Optional

import typer

from tpcloud import errors
from tpcloud.cli.common import VIA_OPTION, Via, run, show, usage_failure
from tpcloud.completion import names_and_groups


class MetricsFormat(str, Enum):
    prom = "prom"
    influx = "influx"
    ndjson = "ndjson"


def metrics(
    ctx: typer.Context,
    names: Optional[list[str]] = typer.Argument(
        None, metavar="[NAME...]", help="Devices, outlets or groups [default with --all: every plug, switch and bulb].",
        autocompletion=names_and_groups, show_default=False,
    ),
    every: bool = typer.Option(False, "--all", help="Every plug, switch and bulb of the account, each strip outlet on its own."),
    kind: MetricsFormat = typer.Option(MetricsFormat.prom, "--format", help="prom (Prometheus text), influx (line protocol) or ndjson."),
    output: Optional[Path] = typer.Option(
        None, "--output", "-o", metavar="FILE",
        help="Write to FILE in one step (node_exporter's textfile collector reads *.prom files) instead of stdout.",
    ),
    via: Via = VIA_OPTION,
) -> None:
    """Read every named device's state and meter once, and print them for Prometheus, InfluxDB or
    as NDJSON.

    A device that does not answer is `tplink_up 0` (exit 0 all the same: a dead plug is data;
    -v says why it did not answer). Labels: name, model, outlet, route, device_id.
    """
    from tpcloud.capabilities.sample import measuring
    from tpcloud.metrics import points_of, render

    if not names and not every:
        raise usage_failure(ctx, errors.UsageError("name devices or groups, or pass --all"))
    if output is not None and not output.parent.is_dir():
        raise usage_failure(ctx, errors.UsageError(f"cannot write {output}: {output.parent} is not a folder"))
    factory = ctx.obj

    async def work(service: Any) -> Any:
        selection = service.outlets_apart(await service.select(names or [], every=every))
        return await service.run_many(selection.targets, measuring(factory.clock, unmetered=set()))

    outcomes = run(ctx, work, via=via.value)
    for outcome in outcomes:
        if outcome.error is not None:
            factory.log(f"{outcome.error.message} (reported as down)")
    text = render(points_of(outcomes), kind.value, factory.clock())
    if output is None:
        show(ctx, text.rstrip("\n"))
        return
    from tpcloud.fsutil import atomic_write

    try:
        atomic_write(output, text.encode("utf-8"), mode=0o644)
    except OSError as exc:
        raise usage_failure(ctx, errors.UsageError(f"cannot write {output}: {exc.strerror or exc}")) from None
