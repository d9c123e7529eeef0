"""What every command shares: the root options and the Factory they make, the one run/report
boundary, and the options and arguments several commands take.

``boundary`` is the one place that runs a command's coroutine and turns any failure into a line
on stderr and an exit code (``run`` gives the coroutine the device service, ``run_account`` the
account); ``report`` and ``show`` are the only writers to stderr
and stdout, and scrub secrets from what they write. Nothing here imports more than typer at
start-up: the event loop and the service are imported when a command runs.
"""

from __future__ import annotations

import os
import traceback
from enum import Enum
from typing import Any, Awaitable, Callable, Optional, TypeVar

import typer

from tpcloud import __version__, errors
from tpcloud.completion import device_names, names_and_groups
from tpcloud.factory import Factory
from tpcloud.output import error_line, to_json

T = TypeVar("T")


class OnOff(str, Enum):
    """`on` or `off`, for an option or argument that takes one of them."""

    on = "on"
    off = "off"


class Via(str, Enum):
    auto = "auto"
    local = "local"
    cloud = "cloud"


VIA_OPTION = typer.Option(
    Via.auto, "--via", help="Route: auto (LAN when known, else cloud, else discovery), local, or cloud."
)
HOST_OPTION = typer.Option(None, "--host", metavar="HOST[:PORT]", help="The device's LAN address (implies trying the LAN).")

NAME_HELP = 'Device alias (any case), device id, or a strip outlet as "OUTLET" or "STRIP/OUTLET".'
NAME_ARGUMENT = typer.Argument(..., metavar="NAME", help=NAME_HELP, autocompletion=device_names)
NAMES_HELP = NAME_HELP + " Several may be given, and groups of config.toml."
NAMES_ARGUMENT = typer.Argument(..., metavar="NAME...", help=NAMES_HELP, autocompletion=names_and_groups)
JSON_OPTION = typer.Option(False, "--json", help="Print JSON for scripts.")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tpcloud {__version__}")
        raise typer.Exit()


# The options before the command; the app's callback (tpcloud/cli/__init__.py). No docstring: Typer
# would take it for the app's help.
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


def run(ctx: typer.Context, work: Callable[[Any], Awaitable[T]], *, via: str = "auto", host: str | None = None) -> T:
    """Run WORK(service) with the device service routing by VIA (and --host)."""
    factory: Factory = ctx.obj

    async def with_service() -> T:
        async with factory.open_service(via=via, host=host) as service:
            return await work(service)

    return boundary(ctx, with_service)


def run_account(ctx: typer.Context, work: Callable[[Any], Awaitable[T]]) -> T:
    """Run WORK(account): login and logout need the account, not the devices."""
    factory: Factory = ctx.obj

    async def with_account() -> T:
        async with factory.open_account() as account:
            return await work(account)

    return boundary(ctx, with_account)


def boundary(ctx: typer.Context, work: Callable[[], Awaitable[T]]) -> T:
    """Run WORK() in one event loop; report any failure as one line and an exit code."""
    import asyncio
    import gc

    if not gc.isenabled():  # the command line's start-up is over (tpcloud/__main__.py)
        gc.freeze()
        gc.enable()
    factory: Factory = ctx.obj
    try:
        return asyncio.run(work())
    except errors.TpcloudError as exc:
        report(factory, error_line(exc))
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        report(factory, "tpcloud: interrupted")
        raise typer.Exit(errors.EXIT_INTERRUPTED) from None
    except Exception as exc:  # a bug: say so in one line, keep the traceback for --debug
        report(factory, f"tpcloud: unexpected error: {type(exc).__name__}: {exc} (run with --debug for details)")
        raise typer.Exit(1) from None


def report(factory: Factory, line: str, exc: BaseException | None = None) -> None:
    """LINE on stderr; with --debug, first the traceback of EXC (or of the error being handled)."""
    if factory.debug:
        trace = "".join(traceback.format_exception(exc)) if exc is not None else traceback.format_exc()
        factory.stderr.write(factory.redactor.scrub(trace))
    factory.stderr.write(factory.redactor.scrub(line) + "\n")
    factory.stderr.flush()


def show(ctx: typer.Context, text: str) -> None:
    """TEXT (a result) on stdout, ended by a newline unless it ends its own lines (CSV's CRLF)."""
    factory: Factory = ctx.obj
    factory.stdout.write(factory.redactor.scrub(text) + ("" if text.endswith("\n") else "\n"))
    factory.stdout.flush()


def usage_failure(ctx: typer.Context, exc: errors.TpcloudError) -> typer.Exit:
    """Report EXC, found before anything ran; the exit to raise for it."""
    factory: Factory = ctx.obj
    report(factory, error_line(exc))
    return typer.Exit(exc.exit_code)


def each_result(ctx: typer.Context, selection: Any, outcomes: list[Any], as_json: bool, *,
                one_json: Callable[[Any], Any], text: Callable[[Any], str],
                together: Callable[[list[Any]], str] | None = None) -> None:
    """Print each target's result in order (JSON: one object for one device named directly, else
    a list with the failures in it; TOGETHER, when given: every result at once, as a table or CSV,
    unless all failed), each failure as a line on stderr; exit with the first failure's code."""
    failed = [outcome.error for outcome in outcomes if outcome.error is not None]
    if as_json and selection.single:
        if outcomes[0].error is None:
            show(ctx, to_json(one_json(outcomes[0].result)))
    elif as_json:
        show(ctx, to_json([outcome.to_dict() for outcome in outcomes]))
    elif together is not None and (len(failed) < len(outcomes) or not outcomes):
        show(ctx, together([outcome.result for outcome in outcomes if outcome.error is None]))
    for outcome in outcomes:
        if outcome.error is not None:
            report(ctx.obj, error_line(outcome.error), outcome.error)
        elif not as_json and together is None:
            show(ctx, text(outcome.result))
    if failed:
        raise typer.Exit(failed[0].exit_code)


def note_route(ctx: typer.Context, route: Any) -> None:
    """With -v, say on stderr which route carried the command."""
    ctx.obj.log(f"(via {route})")
