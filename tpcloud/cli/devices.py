"""The commands on devices themselves: list them, switch them, show their state, send them a raw
request, and find them on the LAN. Each gathers its names and options, hands them to the service
in one ``run``, and prints what comes back.
"""

from __future__ import annotations

import json
from typing import Any, Optional

import typer

from tpcloud import errors
from tpcloud.cli.common import (
    HOST_OPTION, NAME_ARGUMENT, NAMES_ARGUMENT, NAMES_HELP, VIA_OPTION, Via, each_result, note_route, run, show,
    usage_failure,
)
from tpcloud.completion import ACTIONS, switch_words
from tpcloud.output import device_rows, device_table, state_text, switched_text, to_json


def list_devices(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
    refresh: bool = typer.Option(False, "--refresh", help="Fetch the list from the cloud even if the cache is fresh."),
) -> None:
    """List the account's devices (from the cache while it is fresh)."""

    async def work(service: Any) -> Any:
        devices = await service.devices(refresh=refresh)
        return devices, service.lan_addresses(devices)

    devices, lan = run(ctx, work)
    show(ctx, to_json(device_rows(devices, lan)) if as_json else device_table(devices, lan))


def switch(
    ctx: typer.Context,
    words: Optional[list[str]] = typer.Argument(
        None, metavar="NAME... on|off|toggle", help=NAMES_HELP + " The last argument says what to do.",
        autocompletion=switch_words, show_default=False,
    ),
    every: bool = typer.Option(False, "--all", help="Every plug, switch and bulb of the account, each strip outlet on its own."),
    hold: Optional[str] = typer.Option(
        None, "--for", metavar="DURATION",
        help="Switch back after DURATION (30s, 45m, 1h30m), by the device's own countdown timer.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts (a list when several devices are named)."),
    via: Via = VIA_OPTION,
    host: Optional[str] = HOST_OPTION,
) -> None:
    """Switch devices, strip outlets or groups on or off, or toggle each, all at once.

    One line per device, in the order given; each failure is a line on stderr, and the exit code
    is the first failure's. With --for, the device switches itself back when the time is up,
    whether or not this machine is still running (a strip's outlets each get their own timer).
    """
    *names, action = words or [""]
    if action not in ACTIONS:
        problem = f"the last argument must be on, off or toggle, not {action!r}" if action else "say what to do: on, off or toggle"
        raise usage_failure(ctx, errors.UsageError(problem))
    if not names and not every:
        raise usage_failure(ctx, errors.UsageError("name a device or group to switch, or pass --all"))
    seconds = None
    if hold is not None:
        from tpcloud.timespec import parse_duration

        try:
            seconds = parse_duration(hold)
        except errors.TpcloudError as exc:
            raise usage_failure(ctx, exc) from None

    async def work(service: Any) -> Any:
        selection = await service.select(names, every=every)
        if seconds is not None:
            selection = service.outlets_apart(selection)
        return selection, await service.switch_many(selection.targets, action, seconds)

    selection, outcomes = run(ctx, work, via=via.value, host=host)
    each_result(ctx, selection, outcomes, as_json, one_json=lambda r: r.to_dict(),
                 text=lambda r: switched_text(r, verbose=ctx.obj.verbose))


def state(
    ctx: typer.Context,
    names: list[str] = NAMES_ARGUMENT,
    as_json: bool = typer.Option(
        False, "--json", help="Print the device's own state reply as JSON (for several, a list of {name, ..., reply})."
    ),
    via: Via = VIA_OPTION,
    host: Optional[str] = HOST_OPTION,
) -> None:
    """Show whether devices are on, their model, on time and outlets."""
    async def work(service: Any) -> Any:
        selection = await service.select(names)
        return selection, await service.state_many(selection.targets)

    def text(result: Any) -> str:
        note_route(ctx, result.route)
        return state_text(result.summary())

    selection, outcomes = run(ctx, work, via=via.value, host=host)
    each_result(ctx, selection, outcomes, as_json, one_json=lambda r: r.info, text=text)


def send(
    ctx: typer.Context,
    name: str = NAME_ARGUMENT,
    request: str = typer.Argument(
        ..., metavar="JSON",
        help='A request in the device\'s own dialect: \'{"system":{"get_sysinfo":{}}}\' (Kasa), \'{"method":"get_device_info"}\' (Tapo).',
    ),
    via: Via = VIA_OPTION,
    host: Optional[str] = HOST_OPTION,
) -> None:
    """Send a raw JSON request to a device and print its raw reply."""
    try:
        payload = json.loads(request)
        if not isinstance(payload, dict):
            raise ValueError("not an object")
    except ValueError as exc:
        raise usage_failure(ctx, errors.UsageError(f"the request is not a JSON object: {exc}")) from None

    async def work(service: Any) -> Any:
        return await service.send(name, payload)

    _target, reply, route = run(ctx, work, via=via.value, host=host)
    show(ctx, to_json(reply))
    note_route(ctx, route)


def discover(
    ctx: typer.Context,
    target: Optional[str] = typer.Option(
        None, "--target", metavar="ADDR[,ADDR...]", help="Where to send the probes [default: 255.255.255.255, or TPCLOUD_DISCOVERY_TARGET]."
    ),
    timeout: float = typer.Option(3.0, "--timeout", min=0.1, help="Seconds to listen for answers."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Find devices on the LAN (UDP 9999 and 20002) and match them to the account."""
    from tpcloud.config import parse_targets
    from tpcloud.output import discovery_rows, discovery_table

    try:
        targets = parse_targets(target) if target else None
    except errors.TpcloudError as exc:
        raise usage_failure(ctx, exc) from None

    async def work(service: Any) -> Any:
        return await service.discover(targets, timeout)

    found = run(ctx, work)
    show(ctx, to_json(discovery_rows(found)) if as_json else discovery_table(found))
