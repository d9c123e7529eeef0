"""`tpcloud watch` and `tpcloud wait` end to end: the CLI as a process against the emulated home
(tests/doubles/home.py) plus the Kasa energy plug "Kettle" on XOR, at short real intervals, while
the test changes what the emulators measure, stops one, or interrupts the process.
"""

from __future__ import annotations

import datetime
import json
import os
import select
import signal
import subprocess
import sys
import time
from contextlib import ExitStack

import pytest

from tests.conftest import one_line
from tests.doubles.home import _serve
from tests.doubles.wires import XorServer, pick_loopback_host
from tests.test_output_conventions import ESC, documented_keys, on_terminal
from tests.test_cli_capabilities import resident  # noqa: F401  (a fixture: discovery learns this file's `house`)

KETTLE_LINE = "Kettle: on, 61.8 W, 230.8 V, 0.451 A; today 0.000 kWh, this month 0.000 kWh, total 16.323 kWh"


@pytest.fixture
def house(home):
    kettle = home.cloud.by_alias["Kettle"]  # HS110(EU) v4: 61753 mW, 230837 mV, 451 mA, 16323 Wh
    with ExitStack() as stack:
        host = pick_loopback_host(udp_ports=(9999, 20002), tcp_ports=(9999,))
        _serve(stack, home, "Kettle", XorServer(kettle, host, 9999), kettle)
        yield home


def json_lines(stdout: str) -> list[dict]:
    assert stdout.endswith("\n"), stdout
    return [json.loads(line) for line in stdout.splitlines()]


# A terminal's Python: Ctrl-C raises KeyboardInterrupt, even where the test runner ignores SIGINT.
_AS_FROM_A_TERMINAL = ("import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
                       "sys.argv = ['tpcloud', *sys.argv[1:]]; runpy.run_module('tpcloud', run_name='__main__')")


def started(user, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", _AS_FROM_A_TERMINAL, *args], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=user.env, cwd=user.home)


def read_lines(proc: subprocess.Popen, wanted: int, deadline: float = 30) -> bytes:
    """What PROC printed on stdout by the time it has printed WANTED lines."""
    out, stop = b"", time.monotonic() + deadline
    while out.count(b"\n") < wanted:
        assert time.monotonic() < stop, f"only {out!r} after {deadline} s"
        ready, _, _ = select.select([proc.stdout], [], [], 0.1)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 4096)
            assert chunk, f"stdout closed after {out!r}: {proc.stderr.read()!r}"
            out += chunk
    return out


def until(condition, deadline: float = 30) -> None:
    stop = time.monotonic() + deadline
    while not condition():
        assert time.monotonic() < stop, "the condition did not come"
        time.sleep(0.05)


# -- watch ---------------------------------------------------------------------------------------


def test_watch_count_over_xor_and_klap_as_ndjson(resident, house):
    result = resident("watch", "Kettle", "Living Room", "Hallway", "--count", "3", "--interval", "0.5s", "--json")
    assert result.code == 0 and result.stderr == "", result
    samples = json_lines(result.stdout)
    assert len(samples) == 9
    keys = documented_keys("watch --json")
    assert all(set(s) == keys | {"wire", "address"} for s in samples)
    by_name = {name: [s for s in samples if s["name"] == name] for name in ("Kettle", "Living Room", "Hallway")}
    assert all(len(found) == 3 for found in by_name.values())
    kettle = by_name["Kettle"][0]
    assert (kettle["power_w"], kettle["voltage_v"], kettle["current_a"], kettle["total_kwh"]) == (61.753, 230.837, 0.451, 16.323)
    assert (kettle["on"], kettle["state"], kettle["route"], kettle["wire"]) == (True, "on", "local", "xor")
    assert kettle["device_id"] == house.devices["Kettle"].device_id and kettle["outlet_id"] is None
    tapo = by_name["Living Room"][0]  # P110: 0 mW, 46 Wh today
    assert (tapo["power_w"], tapo["today_kwh"], tapo["wire"]) == (0, 0.046, "klap")
    hallway = by_name["Hallway"][0]  # HS100 over KLAP v1: no meter, on/off only
    assert hallway["power_w"] is None and hallway["state"] in ("on", "off") and hallway["wire"] == "klap"
    times = [datetime.datetime.fromisoformat(s["time"]) for s in by_name["Kettle"]]
    assert all(t.tzinfo is not None for t in times)
    assert all(0.3 < (b - a).total_seconds() < 5 for a, b in zip(times, times[1:]))


def test_watch_prints_a_line_per_sample(resident, house):
    strip = resident("watch", "Kettle", "Office Strip", "--count", "2", "--interval", "0.5s")
    assert strip.code == 0 and strip.stderr == "", strip
    lines = strip.stdout.splitlines()
    assert len(lines) == 2 * (1 + 3)  # a strip named whole: each of its outlets
    kettle = [line for line in lines if "Kettle" in line]
    assert [line[9:] for line in kettle] == [KETTLE_LINE] * 2
    assert all(datetime.datetime.strptime(line[:8], "%H:%M:%S") for line in lines)
    outlets = sorted(line[9:].split(": ") for line in lines if "Office Strip/" in line)
    assert [name for name, _ in outlets] == sorted(f"Office Strip/{o}" for o in ("Monitor", "Printer", "Charger") * 2)
    assert all(state in ("on", "off") for _, state in outlets)


def test_watch_stops_when_its_duration_is_over(resident, house):
    began = time.monotonic()
    result = resident("watch", "Kettle", "--duration", "2s", "--interval", "0.5s", "--json")
    took = time.monotonic() - began
    assert result.code == 0 and result.stderr == "", result
    assert 2 <= len(json_lines(result.stdout)) <= 4 and 2 <= took < 15


def test_a_device_sampled_through_the_cloud_is_asked_once_a_minute(resident, house, fake_cloud):
    before = fake_cloud.count("passthrough")
    result = resident("watch", "Kettle", "--via", "cloud", "--interval", "0.5s", "--duration", "3s", "--json")
    assert result.code == 0, result
    (sample,) = json_lines(result.stdout)
    assert sample["route"] == "cloud" and sample["power_w"] == 61.753
    assert fake_cloud.count("passthrough") - before == 2  # its state and its meter, once
    assert one_line(result.stderr) == ("tpcloud: Kettle: sampled through the cloud, so once a minute at most "
                                       "(TP-Link blocks accounts that poll its cloud faster)")


def test_a_failing_device_is_a_line_on_stderr_and_the_exit_code_says_it_never_answered(resident, house):
    house.servers["Bedroom"].stop()
    house.responders["Bedroom"].stop()
    result = resident("watch", "Kettle", "Bedroom", "--count", "2", "--interval", "0.5s")
    assert result.code == 6, result
    assert len([line for line in result.stdout.splitlines() if "Kettle: on" in line]) == 2
    failures = result.stderr.splitlines()
    assert len(failures) == 2 and all(line.startswith("tpcloud: Bedroom: ") for line in failures)


def test_ctrl_c_stops_watch_cleanly_with_whole_lines(resident, house):
    proc = started(resident, "watch", "Kettle", "Living Room", "--interval", "0.5s", "--json")
    try:
        before = read_lines(proc, 3)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert err.decode() == "tpcloud: interrupted\n"
    samples = json_lines((before + out).decode())  # whole lines only, each a sample
    assert len(samples) >= 3 and all(sample["name"] in ("Kettle", "Living Room") for sample in samples)


def test_watch_draws_a_sparkline_on_a_terminal_only(resident, house):
    kettle = house.devices["Kettle"]
    kettle.realtime["power_mw"] = 1000
    args = ("watch", "Kettle", "--count", "3", "--interval", "0.5s")
    env = {**resident.env, "TERM": "xterm-256color"}
    status, out, err = on_terminal(args, env, cwd=resident.home)
    assert status == 0 and err == "", (out, err)
    lines = [line for line in out.replace("\r", "").splitlines() if line]
    # charts.sparkline scales from zero to the highest: a steady 1 W is full height
    assert len(lines) == 3 and [line.rsplit("  ", 1)[1] for line in lines] == ["█", "██", "███"]
    status, out, _ = on_terminal(args, {**env, "NO_COLOR": "1"}, cwd=resident.home)
    assert status == 0 and "█" not in out and ESC not in out
    piped = resident(*args)
    assert piped.code == 0 and "█" not in piped.stdout


# -- wait ----------------------------------------------------------------------------------------


def test_wait_for_power_below_held_and_a_short_dip_does_not_count(resident, house):
    kettle = house.devices["Kettle"]  # 61.8 W
    proc = started(resident, "-v", "wait", "Kettle", "--power-below", "3", "--for", "2s", "--interval", "0.5s")
    try:
        until(lambda: len(kettle.requests) >= 1)  # it has begun to sample
        kettle.realtime["power_mw"] = 1000  # a dip of 1.5 s: shorter than --for
        time.sleep(1.5)
        kettle.realtime["power_mw"] = 61753
        time.sleep(1.5)
        assert proc.poll() is None
        kettle.realtime["power_mw"] = 1500  # for good
        low = time.monotonic()
        time.sleep(1.2)
        assert proc.poll() is None  # 2.7 s below in all, but not 2 s without a break
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert time.monotonic() - low >= 1.9
    assert out.decode() == "Kettle: power below 3 W for 2s\n"
    samples = [line for line in err.decode().splitlines() if line[9:].startswith("Kettle: ")]
    assert any(line.endswith("1.5 W, 230.8 V, 0.451 A; today 0.000 kWh, this month 0.000 kWh, total 16.323 kWh")
               for line in samples)
    assert any(" Kettle: 61.8 W" in line for line in samples) and any(" Kettle: 1.0 W" in line for line in samples)


def test_wait_times_out_with_exit_code_11(resident, house):
    result = resident("wait", "Kettle", "--power-below", "3", "--timeout", "2s", "--interval", "0.5s")
    assert result.code == 11 and result.stdout == ""
    assert one_line(result.stderr) == "tpcloud: Kettle: power below 3 W did not come within 2s"


def test_wait_for_a_state(resident, house):
    plug = house.devices["Living Room"]
    plug.set_on(True)
    proc = started(resident, "wait", "Living Room", "--state", "off", "--interval", "0.5s")
    try:
        until(lambda: len(plug.requests) >= 1)
        time.sleep(0.6)
        assert proc.poll() is None
        plug.set_on(False)
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert (proc.returncode, out.decode(), err.decode()) == (0, "Living Room: off\n", "")


def test_wait_offline_when_the_device_stops_and_online_when_it_is_back(resident, house):
    server, responder = house.servers["Living Room"], house.responders["Living Room"]
    plug = house.devices["Living Room"]
    proc = started(resident, "wait", "Living Room", "--offline", "--interval", "0.5s")
    try:
        until(lambda: len(plug.requests) >= 1)
        time.sleep(0.6)
        assert proc.poll() is None
        server.stop()
        responder.stop()
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert (proc.returncode, out.decode(), err.decode()) == (0, "Living Room: offline\n", "")
    proc = started(resident, "wait", "Living Room", "--online", "--interval", "0.5s", "--timeout", "1m")
    try:
        time.sleep(3)
        assert proc.poll() is None
        server.start()  # on a new port, which discovery tells
        responder.http_port = server.port
        responder.start()
        out, err = proc.communicate(timeout=40)
    finally:
        proc.kill()
    assert (proc.returncode, out.decode(), err.decode()) == (0, "Living Room: online\n", "")


# -- what is refused before anything is asked ----------------------------------------------------


@pytest.mark.parametrize("args, message", [
    (("watch", "Kettle", "--interval", "0"), "--interval 0: give one from 0.5s to 24h"),
    (("watch", "Kettle", "--interval", "-5s"), "--interval: '-5s' is not a duration"),
    (("watch", "Kettle", "--interval", "2d"), "--interval: '2d' is not a duration"),
    (("watch", "Kettle", "--interval", "25h"), "--interval 25h: give one from 0.5s to 24h"),
    (("watch", "Kettle", "--count", "0"), "--count 0: give 1 or more"),
    (("watch", "Kettle", "--duration", "0"), "--duration: '0' is no time at all"),
    (("wait", "Kettle"), "give a condition: --power-below W, --power-above W, --state on|off, --offline or --online"),
    (("wait", "Kettle", "--power-below", "3", "--offline"), "give only one condition"),
    (("wait", "Kettle", "--state", "on", "--power-above", "5"), "give only one condition"),
    (("wait", "Kettle", "--power-below", "0"), "--power-below 0: power is never below that"),
    (("wait", "Kettle", "--offline", "--interval", "0.1s"), "--interval 0.1s: give one from 0.5s to 24h"),
    (("wait", "Kettle", "--online", "--for", "5h"), "--for 5h cannot be held within --timeout 4h"),
    (("wait", "Kettle", "--online", "--timeout", "0"), "--timeout: '0' is no time at all"),
])
def test_bad_input_is_one_line_and_exit_2_before_anything_is_asked(account, fake_cloud, args, message):
    result = account(*args)
    assert result.code == 2 and result.stdout == "", result
    assert one_line(result.stderr).startswith(f"tpcloud: {message}")
    assert fake_cloud.count("passthrough") == 0
