"""Output conventions, for every command run as a process: a result on stdout and nothing on stderr
when it works; nothing on stdout and the error on stderr when it fails; JSON that parses wherever
JSON is promised; and no colour codes, neither into a pipe (even with a colour-capable TERM) nor
onto a terminal when NO_COLOR is set."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import time

from tests.conftest import ROOT

ESC = "\x1b["
LAMP_SYSINFO = '{"system":{"get_sysinfo":{}}}'

# (arguments, whether stdout is JSON); run in this order by a logged-in user.
WORKING = [
    (("--help",), False),
    (("--version",), False),
    (("switch", "--help"), False),
    (("list",), False),
    (("list", "--json"), True),
    (("switch", "Desk Lamp", "on"), False),
    (("switch", "Desk Lamp", "off", "--json"), True),
    (("state", "Office Strip"), False),
    (("state", "Desk Lamp", "--json"), True),
    (("send", "Desk Lamp", LAMP_SYSINFO), True),
    (("discover", "--timeout", "0.3"), False),
    (("discover", "--timeout", "0.3", "--json"), True),
    (("doctor",), False),
    (("doctor", "--json"), True),
]
# (arguments, exit code, whether tpcloud reports it: one line) — Click reports bad arguments itself.
FAILING = [
    (("switch", "Desk Lmap", "on"), 4, True),
    (("send", "Desk Lamp", "[1]"), 2, True),
    (("--timeout", "0", "list"), 2, True),
    (("switch", "Desk Lamp", "sideways"), 2, False),
    (("frobnicate",), 2, False),
]


def test_results_on_stdout_errors_on_stderr_and_no_colour_into_a_pipe(account):
    colourful = {"TERM": "xterm-256color", "COLORTERM": "truecolor"}
    for args, is_json in WORKING:
        result = account(*args, env=colourful)
        assert result.code == 0 and result.stdout and result.stderr == "", result
        assert ESC not in result.stdout, result
        if is_json:
            json.loads(result.stdout)
    for args, code, own in FAILING:
        result = account(*args, env=colourful)
        assert result.code == code and result.stdout == "" and result.stderr, result
        assert ESC not in result.stderr, result
        if own:
            assert result.stderr.startswith("tpcloud: ") and result.stderr.count("\n") == 1, result
    logout = account("logout", env=colourful)
    assert (logout.code, logout.stdout, logout.stderr) == (0, "Logged out: secrets and cache removed.\n", "")


def test_no_colour_on_a_terminal_with_no_color(account):
    env = {**account.env, "TERM": "xterm-256color", "NO_COLOR": "1"}
    for args, code in [(args, 0) for args, _ in WORKING] + [(args, code) for args, code, _ in FAILING]:
        status, out, err = on_terminal(args, env, cwd=account.home)
        assert status == code, (args, out, err)
        assert ESC not in out + err, (args, out, err)
        assert (out if code == 0 else err), (args, out, err)


def on_terminal(args: tuple[str, ...], env: dict[str, str], *, cwd) -> tuple[int, str, str]:
    """Run tpcloud with stdout and stderr each on its own pseudo-terminal; its code and both texts."""
    (out_master, out_slave), (err_master, err_slave) = pty.openpty(), pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tpcloud", *args], stdin=subprocess.DEVNULL, stdout=out_slave, stderr=err_slave,
        env=env, cwd=cwd,
    )
    os.close(out_slave)
    os.close(err_slave)
    texts = {out_master: b"", err_master: b""}
    open_fds, deadline = set(texts), time.monotonic() + 60
    while open_fds and time.monotonic() < deadline:
        ready, _, _ = select.select(list(open_fds), [], [], 0.1)
        for fd in ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the child has closed its end
                chunk = b""
            if chunk:
                texts[fd] += chunk
            else:
                open_fds.discard(fd)
    status = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    os.close(out_master)
    os.close(err_master)
    return status, texts[out_master].decode(), texts[err_master].decode()



def documented_keys(command: str) -> set[str]:
    """The top-level keys docs/json.md gives for ``command``."""
    readme = (ROOT / "docs" / "json.md").read_text()
    shape = re.search(rf"^- `{re.escape(command)}`: [^{{]*(\{{.*?\}})[^\]]", readme, re.M)[1]
    return set(re.findall(r'"(\w+)"', re.sub(r"\[.*?\]", "", shape)))


def test_the_json_shapes_are_those_the_docs_document(user):
    found = json.loads(user("discover", "--timeout", "1", "--json").stdout)
    assert found and all(set(entry) == documented_keys("discover --json") for entry in found)
    devices = json.loads(user("list", "--json").stdout)
    assert all(set(d) == documented_keys("list --json") for d in devices)
    assert any(d["lan_address"] for d in devices) and any(d["lan_address"] is None for d in devices)
    local = json.loads(user("switch", "Desk Lamp", "on", "--json").stdout)
    assert local["route"] == "local" and set(local) == documented_keys("switch --json") | {"wire", "address"}
    cloud = json.loads(user("switch", "Desk Lamp", "off", "--json", "--via", "cloud").stdout)
    assert set(cloud) == documented_keys("switch --json")
    checks = json.loads(user("doctor", "--json").stdout)
    assert all(set(c) == documented_keys("doctor --json") for c in checks)
