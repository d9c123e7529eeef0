"""The commands for what a device can do beyond on/off: its status LED and its light (its energy
meter has a module of its own, tpcloud/cli/energy.py). The capabilities themselves (requests per
dialect, checks, results) are in tpcloud/capabilities; each command here only gathers its
options, has the capability check what needs no device, and runs its exchange over the usual
routes.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import typer

from tpcloud import errors
from tpcloud.cli.common import HOST_OPTION, NAME_ARGUMENT, VIA_OPTION, OnOff, Via, note_route, run, show, usage_failure
from tpcloud.output import to_json


def _capability(ctx: typer.Context, name: str, exchange: Any, text: Callable[[str, Any], str], *,
                as_json: bool, via: Via, host: Optional[str]) -> None:
    """Run one capability's exchange with NAME over the usual routes and print its result."""

    async def work(service: Any) -> Any:
        return await service.run(name, exchange)

    done = run(ctx, work, via=via.value, host=host)
    show(ctx, to_json(done.to_dict()) if as_json else text(done.target.full_name, done.result))
    note_route(ctx, done.route)


def led(
    ctx: typer.Context,
    name: str = NAME_ARGUMENT,
    action: Optional[OnOff] = typer.Argument(None, metavar="[on|off]", help="Switch the LED; without it, show it."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
    via: Via = VIA_OPTION,
    host: Optional[str] = HOST_OPTION,
) -> None:
    """Show the status LED of a plug, switch or strip, or switch it on or off."""
    from tpcloud.capabilities import led as capability
    from tpcloud.output import led_text

    exchange = capability.exchange(None if action is None else action is OnOff.on)
    _capability(ctx, name, exchange, led_text, as_json=as_json, via=via, host=host)


def light(
    ctx: typer.Context,
    name: str = NAME_ARGUMENT,
    brightness: Optional[int] = typer.Option(None, "--brightness", metavar="N", help="Brightness, 1-100 %."),
    temp: Optional[int] = typer.Option(None, "--temp", metavar="K", help="White colour temperature in kelvin (the bulb's own range)."),
    hue: Optional[int] = typer.Option(None, "--hue", metavar="H", help="Colour hue, 0-360."),
    saturation: Optional[int] = typer.Option(None, "--saturation", metavar="S", help="Colour saturation, 0-100 %."),
    transition: Optional[int] = typer.Option(None, "--transition", metavar="MS", help="Fade over MS milliseconds (Kasa bulbs and dimmers)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
    via: Via = VIA_OPTION,
    host: Optional[str] = HOST_OPTION,
) -> None:
    """Set a bulb's or dimmer's brightness, colour temperature or colour (and switch it on).

    Values are checked against what the light says it supports; one outside it exits 2.
    """
    from tpcloud.capabilities import light as capability
    from tpcloud.output import light_text

    change = capability.Change(brightness, temp, hue, saturation, transition)
    try:
        change.check()
    except errors.TpcloudError as exc:
        raise usage_failure(ctx, exc) from None
    _capability(ctx, name, capability.exchange(change), light_text, as_json=as_json, via=via, host=host)
