"""The command line: parse arguments, call the service, hand results to output.

Commands stay thin: each gathers its inputs, runs one coroutine on the service in one event
loop (``_run``), and prints. ``_run`` is the one place that turns errors into a line on stderr
and an exit code.
"""

from __future__ import annotations

import json
import os
import traceback
from enum import Enum
from typing import Any, Awaitable, Callable, Optional, TypeVar

import typer

from tpcloud import __version__, errors
from tpcloud.completion import device_names, use_quoting_bash
from tpcloud.factory import Factory
from tpcloud.output import device_rows, device_table, error_line, onoff, state_text, to_json

T = TypeVar("T")

EXIT_CODES_HELP = (
    "Exit codes: 0 ok, 1 unexpected error, 2 bad usage or input, 3 login needed or refused, "
    "4 no such device, 5 the device refused the command, 6 device unreachable, 7 network error "
    "or timeout, 8 cloud or protocol error, 9 secret store problem, 130 interrupted."
)

app = typer.Typer(
    name="tpcloud",
    help="Control TP-Link Kasa and Tapo plugs, strips, bulbs and dimmers, on the LAN or through the TP-Link cloud.",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


class Via(str, Enum):
    auto = "auto"
    local = "local"
    cloud = "cloud"


VIA_OPTION = typer.Option(
    Via.auto, "--via", help="Route: auto (LAN when known, else cloud, else discovery), local, or cloud."
)
HOST_OPTION = typer.Option(None, "--host", metavar="HOST[:PORT]", help="The device's LAN address (implies trying the LAN).")


class Action(str, Enum):
    on = "on"
    off = "off"
    toggle = "toggle"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tpcloud {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show each request and reply (secrets masked) on stderr."),
    debug: bool = typer.Option(False, "--debug", help="Show a traceback when something fails."),
    timeout: Optional[float] = typer.Option(
        None, "--timeout", help="Seconds to wait for any network answer [default: 10, or TPCLOUD_TIMEOUT]."
    ),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version and exit."),
) -> None:
    ctx.obj = Factory(env=os.environ, timeout=timeout, verbose=verbose or debug, debug=debug)


def _run(ctx: typer.Context, work: Callable[[Any], Awaitable[T]], *, via: str = "auto", host: str | None = None) -> T:
    """Run WORK(service) in one event loop; report any failure as one line and an exit code."""
    import asyncio

    from tpcloud.service import DeviceService

    factory: Factory = ctx.obj

    async def with_service() -> T:
        async with DeviceService(factory, via=via, host=host) as service:
            return await work(service)

    try:
        return asyncio.run(with_service())
    except errors.TpcloudError as exc:
        _report(factory, error_line(exc))
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        _report(factory, "tpcloud: interrupted")
        raise typer.Exit(errors.EXIT_INTERRUPTED) from None
    except Exception as exc:  # a bug: say so in one line, keep the traceback for --debug
        _report(factory, f"tpcloud: unexpected error: {type(exc).__name__}: {exc} (run with --debug for details)")
        raise typer.Exit(1) from None


def _report(factory: Factory, line: str) -> None:
    if factory.debug:
        factory.stderr.write(factory.redactor.scrub(traceback.format_exc()))
    factory.stderr.write(factory.redactor.scrub(line) + "\n")
    factory.stderr.flush()


def _print(ctx: typer.Context, text: str) -> None:
    factory: Factory = ctx.obj
    factory.stdout.write(factory.redactor.scrub(text) + "\n")
    factory.stdout.flush()


def _usage_failure(ctx: typer.Context, exc: errors.TpcloudError) -> typer.Exit:
    factory: Factory = ctx.obj
    _report(factory, error_line(exc))
    return typer.Exit(exc.exit_code)


# -- account --------------------------------------------------------------------------------


def _credentials(ctx: typer.Context, username: Optional[str], password_stdin: bool) -> tuple[str, str]:
    """Username and password from the options, the environment, or a prompt — never a hang."""
    factory: Factory = ctx.obj
    interactive = factory.stdin_is_tty()
    username = username or factory.env.get("TPCLOUD_USERNAME")
    if not username:
        if not interactive:
            raise errors.UsageError("no username given", hint="pass --username or set TPCLOUD_USERNAME")
        username = typer.prompt("TP-Link account e-mail")
    if password_stdin:
        password = factory.stdin.readline().rstrip("\r\n")
        if not password:
            raise errors.UsageError("--password-stdin was given but standard input had no password")
    elif factory.env.get("TPCLOUD_PASSWORD"):
        password = factory.env["TPCLOUD_PASSWORD"]
    elif interactive:
        password = typer.prompt("Password", hide_input=True)
    else:
        raise errors.UsageError("no password given", hint="use --password-stdin or set TPCLOUD_PASSWORD")
    return username.strip(), password


@app.command()
def login(
    ctx: typer.Context,
    username: Optional[str] = typer.Option(None, "--username", "-u", help="Account e-mail [or TPCLOUD_USERNAME]."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from the first line of stdin."),
    store_password: bool = typer.Option(
        True, "--store-password/--no-store-password", help="Keep the password for silent re-login and local control."
    ),
) -> None:
    """Log in to the TP-Link cloud and keep the session in the secret store.

    The password comes from --password-stdin, else TPCLOUD_PASSWORD, else a hidden prompt.
    """
    try:
        user, password = _credentials(ctx, username, password_stdin)
    except errors.TpcloudError as exc:
        raise _usage_failure(ctx, exc) from None
    ctx.obj.redactor.add(password)

    async def work(service: Any) -> tuple[str, str]:
        return await service.login(user, password, store_password=store_password)

    email, store = _run(ctx, work)
    _print(ctx, f"Logged in as {email}. Secrets are kept in the {store}.")


@app.command()
def logout(ctx: typer.Context) -> None:
    """Forget the session, the stored password and the device cache."""

    async def work(service: Any) -> None:
        service.logout()

    _run(ctx, work)
    _print(ctx, "Logged out: secrets and cache removed.")


# -- devices ---------------------------------------------------------------------------------

NAME_HELP = 'Device alias (any case), device id, or a strip outlet as "OUTLET" or "STRIP/OUTLET".'
NAME_ARGUMENT = typer.Argument(..., metavar="NAME", help=NAME_HELP, autocompletion=device_names)


@app.command("list")
def list_devices(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
    refresh: bool = typer.Option(False, "--refresh", help="Fetch the list from the cloud even if the cache is fresh."),
) -> None:
    """List the account's devices (from the cache while it is fresh)."""

    async def work(service: Any) -> Any:
        devices = await service.devices(refresh=refresh)
        return devices, service.lan_addresses(devices)

    devices, lan = _run(ctx, work)
    _print(ctx, to_json(device_rows(devices, lan)) if as_json else device_table(devices, lan))


@app.command()
def switch(
    ctx: typer.Context,
    name: str = NAME_ARGUMENT,
    action: Action = typer.Argument(..., metavar="on|off|toggle", help="What to do."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
    via: Via = VIA_OPTION,
    host: Optional[str] = HOST_OPTION,
) -> None:
    """Switch a device or strip outlet on or off, or toggle it."""

    async def work(service: Any) -> Any:
        return await service.switch(name, action.value)

    result = _run(ctx, work, via=via.value, host=host)
    if as_json:
        _print(ctx, to_json(result.to_dict()))
    else:
        _print(ctx, f"{result.target.full_name}: {onoff(result.on)}" + (f" (via {result.route})" if ctx.obj.verbose else ""))


@app.command()
def state(
    ctx: typer.Context,
    name: str = NAME_ARGUMENT,
    as_json: bool = typer.Option(False, "--json", help="Print the device's own state reply as JSON."),
    via: Via = VIA_OPTION,
    host: Optional[str] = HOST_OPTION,
) -> None:
    """Show whether a device is on, its model, on time and outlets."""
    from tpcloud.service import dialect_of

    async def work(service: Any) -> Any:
        return await service.state(name)

    target, info, route = _run(ctx, work, via=via.value, host=host)
    if as_json:
        _print(ctx, to_json(info))
    else:
        _print(ctx, state_text(dialect_of(target.device).summary(target.device, info, target.outlet)))
        _note_route(ctx, route)


@app.command()
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
        raise _usage_failure(ctx, errors.UsageError(f"the request is not a JSON object: {exc}")) from None

    async def work(service: Any) -> Any:
        return await service.send(name, payload)

    _target, reply, route = _run(ctx, work, via=via.value, host=host)
    _print(ctx, to_json(reply))
    _note_route(ctx, route)


def _note_route(ctx: typer.Context, route: Any) -> None:
    """With -v, say on stderr which route carried the command."""
    ctx.obj.log(f"(via {route})")


@app.command()
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
        raise _usage_failure(ctx, exc) from None

    async def work(service: Any) -> Any:
        return await service.discover(targets, timeout)

    found = _run(ctx, work)
    _print(ctx, to_json(discovery_rows(found)) if as_json else discovery_table(found))


@app.command()
def doctor(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Check the secret store, the login, the cache, the cloud and the devices on the LAN.

    Exits with the exit code of the first problem found, 0 when there is none.
    """
    from tpcloud.doctor import diagnose, exit_code
    from tpcloud.output import doctor_table

    async def work(service: Any) -> Any:
        return await diagnose(ctx.obj, service)

    checks = _run(ctx, work)
    _print(ctx, to_json([c.to_dict() for c in checks]) if as_json else doctor_table(checks))
    raise typer.Exit(exit_code(checks))


def main() -> None:
    # Building the command registers Typer's completion classes; bash's is then replaced by one
    # that quotes what it offers (Desk Lamp -> Desk\ Lamp).
    command = typer.main.get_command(app)
    use_quoting_bash()
    command(prog_name="tpcloud")
