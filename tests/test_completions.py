"""Shell completion: the committed scripts are what `make completions` and `--install-completion`
write, and real bash, zsh and fish, driven in a terminal, complete commands, on|off|toggle,
--via values and device names — from the cache alone, quoted so the shell passes one argument.
"""

from __future__ import annotations

import os
import pty
import re
import select
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT

SCRIPTS = ROOT / "completions"
VENV_BIN = Path(sys.executable).parent
SHELLS = ("bash", "zsh", "fish")

# How each shell starts bare (no user rc files), loads the committed script, and defines a
# `tpcloud` function that prints the arguments the shell would pass. Completion itself runs
# the real tpcloud from PATH (the scripts call it through `env`, which skips functions).
# Markers are typed as READ''Y and EN''D, so the terminal's echo of the typing never matches them.
_START = {
    "bash": (["bash", "--norc", "--noprofile", "-i"],
             "source {script}; tpcloud() {{ printf '<%s>' \"$@\"; echo EN''D; }}; echo READ''Y"),
    "zsh": (["zsh", "-f", "-i"],
            "autoload -Uz compinit && compinit -u -D; source {script}; tpcloud() {{ printf '<%s>' \"$@\"; echo EN''D; }}; echo READ''Y"),
    "fish": (["fish", "--no-config", "-i"],
             "source {script}; function tpcloud; printf '<%s>' $argv; echo EN''D; end; echo READ''Y"),
}


# Interactive shells want the terminal as their controlling one (fish refuses to start without).
_ON_TERMINAL = "import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); os.execvp(sys.argv[1], sys.argv[1:])"


def _shell_or_skip(shell: str) -> None:
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed (.ci/run installs it: apt-get install {shell})")


def _shell_env(cli) -> dict[str, str]:
    return {**cli.env, "PATH": f"{VENV_BIN}{os.pathsep}{cli.env['PATH']}", "TERM": "xterm",
            "XDG_DATA_HOME": str(cli.home / "data")}


def type_lines(shell: str, cli, lines: list[str]) -> list[str]:
    """Type each line into an interactive SHELL followed by <TAB> and <Enter>; return, per line,
    the arguments `tpcloud` received, as `<arg><arg>...`."""
    argv, start = _START[shell]
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-c", _ON_TERMINAL, *argv], stdin=slave, stdout=slave, stderr=slave, env=_shell_env(cli), cwd=cli.home,
                            start_new_session=True)
    os.close(slave)
    output = bytearray()
    deadline = time.monotonic() + 60

    def wait_for(marker: bytes, count: int) -> None:
        """Read the terminal until MARKER has shown COUNT times (or the shell ends, or time is up)."""
        while output.count(marker) < count and time.monotonic() < deadline:
            if select.select([master], [], [], 0.2)[0]:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # the shell exited and the terminal closed
                    return
                if not chunk:
                    return
                output.extend(chunk)
            elif proc.poll() is not None:
                return

    # One line at a time, each once the shell has finished the one before: a shell that is still
    # starting up may throw away what was typed ahead.
    try:
        os.write(master, (start.format(script=shlex.quote(str(SCRIPTS / f"tpcloud.{shell}"))) + "\n").encode())
        wait_for(b"READY", 1)
        for done, line in enumerate(lines, 1):
            os.write(master, f"{line}\t\n".encode())
            wait_for(b"END", done)
        os.write(master, b"exit\n")
    finally:
        proc.kill()
        proc.wait()
        os.close(master)
    return re.findall(r"((?:<[^<>\r\n]*>)+)END", bytes(output).decode(errors="replace"))


@pytest.fixture
def cached(account):
    """A logged-in user whose device list (with the strip's outlets) is in the cache."""
    assert account("list").code == 0
    return account


# -- the scripts -----------------------------------------------------------------------------


def test_committed_scripts_are_what_make_completions_writes(tmp_path):
    made = subprocess.run(
        ["make", "-s", "completions", f"VENV={sys.prefix}", f"COMPLETIONS_DIR={tmp_path}"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert made.returncode == 0, made.stderr
    for shell in SHELLS:
        fresh = (tmp_path / f"tpcloud.{shell}").read_text()
        assert "_TPCLOUD_COMPLETE=complete_" in fresh
        assert (SCRIPTS / f"tpcloud.{shell}").read_text() == fresh, f"completions/ is stale: run `make completions` ({shell})"
    assert (SCRIPTS / "tpcloud.zsh").read_text().startswith("#compdef tpcloud\n")


@pytest.mark.parametrize("shell, installed", [
    ("bash", ".bash_completions/tpcloud.sh"), ("zsh", ".zfunc/_tpcloud"), ("fish", ".config/fish/completions/tpcloud.fish"),
])
def test_install_completion_installs_the_committed_script(cli, shell, installed):
    # Typer's own switch: name the shell instead of detecting it from the parent process.
    result = cli("--install-completion", shell, env={"_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"})
    assert result.code == 0, result
    assert (cli.home / installed).read_text().strip() == (SCRIPTS / f"tpcloud.{shell}").read_text().strip()


# -- the shells ------------------------------------------------------------------------------


@pytest.mark.parametrize("shell", SHELLS)
def test_each_shell_completes_commands_actions_options_and_names(cached, populated_cloud, shell):
    _shell_or_skip(shell)
    populated_cloud.clear_requests()
    typed = {
        "tpcloud sw": "<switch>",
        "tpcloud switch De": "<switch><Desk Lamp>",
        'tpcloud switch "Desk L': "<switch><Desk Lamp>",
        "tpcloud state 'Porch": "<state><Porch Dimmer>",
        "tpcloud switch Office\\ Strip/P": "<switch><Office Strip/Printer>",
        "tpcloud state Char": "<state><Charger>",
        'tpcloud switch "Desk Lamp" tog': "<switch><Desk Lamp><toggle>",
        "tpcloud send Kettle --via c": "<send><Kettle><--via><cloud>",
        "tpcloud schedule Kettle a": "<schedule><Kettle><add>",
        "tpcloud schedule Kettle add of": "<schedule><Kettle><add><off>",
    }
    assert type_lines(shell, cached, list(typed)) == list(typed.values())
    assert populated_cloud.count() == 0  # names came from the cache


def test_name_completion_reads_the_cache_and_loads_nothing_heavy(cached, populated_cloud):
    populated_cloud.clear_requests()
    env = {"_TPCLOUD_COMPLETE": "complete_bash", "COMP_WORDS": "tpcloud\nswitch\nOffice", "COMP_CWORD": "2"}
    result, modules = cached.loaded_modules(env=env)
    assert result.stdout.splitlines() == ["Office\\ Strip", "Office\\ Strip/Monitor", "Office\\ Strip/Printer",
                                          "Office\\ Strip/Charger"]
    for heavy in ("httpx", "cryptography", "keyring", "tabulate", "asyncio"):
        assert heavy not in modules, heavy
    assert populated_cloud.count() == 0


def test_groups_of_config_toml_complete_too(cached):
    (cached.config_dir / "config.toml").write_text('[groups]\nevening = ["Desk Lamp", "Office Strip/Printer"]\n')
    for command in ("switch", "state"):
        env = {"_TPCLOUD_COMPLETE": "complete_bash", "COMP_WORDS": f"tpcloud\n{command}\neve", "COMP_CWORD": "2"}
        assert cached(env=env).stdout.split() == ["evening"], command


@pytest.mark.parametrize("words, offered", [
    ("tpcloud\nschedule\nKe", ["Kettle"]),
    ("tpcloud\nschedule\nap", ["apply"]),
    ("tpcloud\nschedule\nKettle\n", ["list", "add", "rm", "enable", "disable", "clear"]),
    ("tpcloud\nschedule\nKettle\nadd\n", ["on", "off"]),
    ("tpcloud\nschedule\nKettle\nrm\n", []),
    ("tpcloud\nschedule\napply\n", []),  # a file name: the shell's own completion
    ("tpcloud\nschedule\napply\nhouse.toml\nDesk", ["Desk\\ Lamp"]),
])
def test_schedule_completes_names_verbs_and_actions(cached, words, offered):
    env = {"_TPCLOUD_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(words.count("\n"))}
    assert [w for w in cached(env=env).stdout.splitlines() if w] == offered


def test_names_without_a_cache_complete_to_nothing(cli):
    env = {"_TPCLOUD_COMPLETE": "complete_bash", "COMP_WORDS": "tpcloud\nstate\n", "COMP_CWORD": "2"}
    result = cli(env=env)
    assert (result.code, result.stdout.strip(), result.stderr) == (0, "", "")


# -- what completes ----------------------------------------------------------------------------


def test_only_names_that_pick_one_target_are_offered(tmp_path, monkeypatch):
    from tpcloud.cache import DeviceCache
    from tpcloud.completion import device_names
    from tpcloud.devices import Device, Outlet

    def strip(alias, device_id, outlets):
        return Device(device_id, alias, "KP303(US)", "IOT.SMARTPLUGSWITCH", True, "",
                      outlets=tuple(Outlet(f"{device_id}0{i}", o) for i, o in enumerate(outlets)))

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    DeviceCache(tmp_path / "tpcloud", ttl=0).save([strip("Office Strip", "S1", ["Fan", "Printer"]), strip("Den Strip", "S2", ["Fan"])])
    assert device_names("") == [
        ("Office Strip", "KP303(US)"), ("Office Strip/Fan", "outlet of Office Strip"),
        ("Office Strip/Printer", "outlet of Office Strip"), ("Printer", "outlet of Office Strip"),
        ("Den Strip", "KP303(US)"), ("Den Strip/Fan", "outlet of Den Strip"),
    ]  # "Fan" alone would be ambiguous
    assert [name for name, _ in device_names("Den")] == ["Den Strip", "Den Strip/Fan"]
    assert device_names("den") == []  # prefixes match as the shells match them: case and all


@pytest.mark.parametrize("opening", ["", "'", '"'])
def test_bash_words_survive_bash_in_every_quoting(opening):
    from tpcloud.completion import bash_word

    _shell_or_skip("bash")
    name = "Bob's \"$HOME\" lamp `x` \\ *"
    word = opening + bash_word(name, opening) + opening  # readline closes an open quote itself
    printed = subprocess.run(["bash", "--norc", "-c", f"printf '%s' {word}"], capture_output=True, text=True, timeout=30)
    assert printed.stdout == name
