"""The app is built with the one command the arguments name (Click builds every command it is
given before running one): that app must behave as the whole one does for that command."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from tpcloud.cli import COMMANDS, app, build, command_named


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
        one, every = (runner.invoke(a, args, prog_name="tpcloud") for a in (build(name), app))
        assert (one.exit_code, one.output) == (every.exit_code, every.output), args


def test_the_whole_app_lists_every_command(cli):
    result = cli("--help")
    assert result.code == 0
    listed = [line.split()[0] for line in result.stdout.split("Commands:")[1].splitlines() if line.startswith("  ") and line.split()]
    assert listed[:len(COMMANDS)] == list(COMMANDS)
