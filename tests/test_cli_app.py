"""The app is built with the one command the arguments name (Click builds every command it is
given before running one): that app must behave as the whole one does for that command."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from tpcloud.cli import COMMANDS, build, command_named


@pytest.mark.parametrize("args, named", [
    (["switch", "Desk Lamp", "on"], "switch"),
    (["-v", "state", "x"], "state"),
    (["--debug", "--verbose", "--timeout", "5", "list"], "list"),
    (["--timeout=5", "energy", "--all"], "energy"),
    (["--timeout", "switch", "list"], "list"),  # "switch" is --timeout's value here
    ([], None),
    (["--help"], None),
    (["--version"], None),
    (["-x", "switch"], None),
    (["swich", "x", "on"], None),  # a typo: the whole app says which commands there are
])
def test_the_command_is_found_after_the_root_options(args, named):
    assert command_named(args) == named


@pytest.mark.parametrize("name", list(COMMANDS))
def test_a_command_built_alone_helps_and_fails_as_in_the_whole_app(name):
    runner = CliRunner()
    for args in ([name, "--help"], [name, "--no-such-option"]):
        one, every = (runner.invoke(a, args, prog_name="tpcloud") for a in (build(name), build()))
        assert (one.exit_code, one.output) == (every.exit_code, every.output), args


def test_the_whole_app_lists_every_command(cli):
    result = cli("--help")
    assert result.code == 0
    listed = [line.split()[0] for line in result.stdout.split("Commands:")[1].splitlines() if line.startswith("  ") and line.split()]
    assert listed[:len(COMMANDS)] == list(COMMANDS)


# -- how the process ends, and its garbage collector -------------------------------------------

def test_output_is_whole_when_the_process_ends_without_teardown(account, populated_cloud):
    """tpcloud ends with os._exit after flushing: every line a command printed arrives, in a pipe
    too, and the exit code is the command's."""
    listed = account("list", "--json")
    assert listed.code == 0 and json.loads(listed.stdout)  # the whole JSON document arrived
    missing = account("switch", "No Such Device", "on")
    assert missing.code == 4 and missing.stderr.count("\n") == 1 and missing.stdout == ""


def test_a_reader_that_went_away_is_no_traceback(account):
    """`tpcloud list | head -1` where head has already gone: the output has nowhere to go. One
    exit code, and no traceback or 'Exception ignored' from a last flush at the interpreter's end."""
    reading, writing = os.pipe()
    os.close(reading)  # every write to the pipe now fails (EPIPE; Python ignores SIGPIPE)
    try:
        proc = subprocess.run([sys.executable, "-m", "tpcloud", "list"], stdout=writing, stderr=subprocess.PIPE,
                              env=account.env, cwd=account.home, text=True, timeout=60)
    finally:
        os.close(writing)
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr, proc.stderr
    assert proc.returncode == 1


def test_the_command_line_collects_garbage_again_once_its_work_begins():
    """Start-up runs without the collector (tpcloud/__main__.py); a command's work (a `watch`
    runs for days) runs with it, over a generation frozen at the start."""
    import gc

    from tpcloud.cli.common import boundary
    from tpcloud.factory import Factory

    async def work() -> bool:
        return gc.isenabled()

    class Context:
        obj = Factory(env={})

    gc.disable()
    try:
        assert boundary(Context(), work) is True
        assert gc.isenabled() and gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.enable()
