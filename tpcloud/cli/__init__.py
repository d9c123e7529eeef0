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

import typer

from tpcloud import errors
from tpcloud.cli import account, capabilities, devices, doctor, energy, metrics, timekeeping, watching
from tpcloud.cli.common import root
from tpcloud.completion import use_quoting_bash

EXIT_CODES_HELP = "Exit codes: " + ", ".join(f"{code} {meaning}" for code, meaning in errors.EXIT_CODES.items()) + "."

app = typer.Typer(
    name="tpcloud",
    help="Control TP-Link Kasa and Tapo plugs, strips, bulbs and dimmers, on the LAN or through the TP-Link cloud.",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
app.callback()(root)
app.command()(account.login)
app.command()(account.logout)
app.command("list")(devices.list_devices)
app.command()(devices.switch)
app.command()(devices.state)
app.command()(devices.send)
app.command()(devices.discover)
app.command()(doctor.doctor)
app.command()(capabilities.led)
app.command()(capabilities.light)
app.command()(energy.energy)
app.command()(timekeeping.timer)
app.command()(timekeeping.schedule)
app.command()(timekeeping.time)
app.command()(watching.watch)
app.command()(watching.wait)
app.command()(metrics.metrics)


def main() -> None:
    # Building the command registers Typer's completion classes; bash's is then replaced by one
    # that quotes what it offers (Desk Lamp -> Desk\ Lamp).
    command = typer.main.get_command(app)
    use_quoting_bash()
    command(prog_name="tpcloud")
