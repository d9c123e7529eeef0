"""The command line: parse arguments, call the service, hand results to output.

Commands stay thin: each gathers its inputs, runs one coroutine on the service in one event
loop (``common.run``, the one place that turns errors into a line on stderr and an exit code),
and prints. This module only builds the app from the commands of account, devices, doctor,
capabilities, energy, timekeeping, watching and metrics, in the order `tpcloud --help` lists
them. Start-up stays fast: nothing heavy (httpx, keyring, tabulate, asyncio, the service,
sqlite3) is imported until a
command runs.
"""

from __future__ import annotations

import importlib
from typing import Callable, NoReturn

import typer

from tpcloud import errors
from tpcloud.cli.common import root
from tpcloud.completion import use_quoting_bash

EXIT_CODES_HELP = "Exit codes: " + ", ".join(f"{code} {meaning}" for code, meaning in errors.EXIT_CODES.items()) + "."

# Every command, in the order `tpcloud --help` lists them: its module in tpcloud.cli and function.
# A command's module is imported only when the app is built with it.
COMMANDS: dict[str, tuple[str, str]] = {
    "login": ("account", "login"),
    "logout": ("account", "logout"),
    "list": ("devices", "list_devices"),
    "switch": ("devices", "switch"),
    "state": ("devices", "state"),
    "send": ("devices", "send"),
    "discover": ("devices", "discover"),
    "doctor": ("doctor", "doctor"),
    "led": ("capabilities", "led"),
    "light": ("capabilities", "light"),
    "energy": ("energy", "energy"),
    "timer": ("timekeeping", "timer"),
    "schedule": ("timekeeping", "schedule"),
    "time": ("timekeeping", "time"),
    "watch": ("watching", "watch"),
    "wait": ("watching", "wait"),
    "metrics": ("metrics", "metrics"),
}
# The options before the command that take a value (the others are flags); see common.root.
_VALUED_ROOT_OPTIONS = ("--timeout",)


def build(only: str | None = None) -> typer.Typer:
    """The app with every command, or with the root options and the command ONLY alone."""
    app = typer.Typer(
        name="tpcloud",
        help="Control TP-Link Kasa and Tapo plugs, strips, bulbs and dimmers, on the LAN or through the TP-Link cloud.",
        epilog=EXIT_CODES_HELP,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
    )
    app.callback()(root)
    for name in COMMANDS:
        if only is None or name == only:
            app.command(name)(command_function(name))
    return app


def command_function(name: str) -> Callable[..., None]:
    """The function behind command NAME, its module imported now."""
    module, function = COMMANDS[name]
    return getattr(importlib.import_module(f"tpcloud.cli.{module}"), function)


def command_named(args: list[str]) -> str | None:
    """The command ARGS run, when they name one after the root options; None when they ask the
    app itself (no command, `--help`, `--version`, an option it does not know)."""
    waiting_value = False
    for arg in args:
        if waiting_value:
            waiting_value = False
        elif arg in _VALUED_ROOT_OPTIONS:
            waiting_value = True
        elif arg in ("-v", "--verbose", "--debug") or arg.startswith(tuple(f"{o}=" for o in _VALUED_ROOT_OPTIONS)):
            continue
        elif arg.startswith("-"):
            return None
        else:
            return arg if arg in COMMANDS else None
    return None


def main() -> None:
    """Run the command line. Click builds every command of the app it is given, their options
    and help included, before it runs one: ~10 ms with every command, on every run. When the
    arguments name a command, the app is built with that one alone; errors, help and completion
    of the command are the same, and `tpcloud --help` (or completion of the command's name)
    still gets them all."""
    import sys

    chosen = command_named(sys.argv[1:])
    # Building the command registers Typer's completion classes; bash's is then replaced by one
    # that quotes what it offers (Desk Lamp -> Desk\ Lamp).
    command = typer.main.get_command(build(chosen))
    use_quoting_bash()
    try:
        command(prog_name="tpcloud")
    except SystemExit as done:
        leave(done.code)
    leave(0)


def leave(code: object) -> NoReturn:
    """End the process with exit CODE now, its output flushed, without the interpreter's teardown.

    Tearing down what a command loaded (typer, asyncio and the rest, module by module, then a
    last garbage collection) takes ~18 ms: more than a LAN exchange. Nothing tpcloud holds needs
    it: files are written whole and renamed into place, an archive's transaction is committed
    before its command returns, the event loop and its executor are shut down by asyncio.run,
    and a keyring call still running is a daemon thread given up on. An exception other than
    SystemExit does not come here: it ends the process the usual way.
    """
    import os
    import sys

    if code is None:
        code = 0
    elif not isinstance(code, int):  # sys.exit("message"), as Python ends it: message, status 1
        print(code, file=sys.stderr)
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a reader that went away (`| head`), or a closed stream
            pass
    os._exit(code)
