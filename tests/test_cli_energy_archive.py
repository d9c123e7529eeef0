"""Energy over time, end to end: `tpcloud energy NAME...|--all` as one table, `--archive` into
SQLite, histories merged with the archive, `--from/--to` and `--format csv`, the chart on a
terminal, and a broken archive, as processes against the emulated house of
test_cli_capabilities.py (Kasa HS110 v1 and v4 and an HS300 over XOR, a Tapo P110 and a P304M
strip over KLAP v2) and through the cloud's passthrough.

What was stored is read back from the SQLite file itself, and what a meter holds is changed in
its emulator (``record_energy``, ``reset_meter``, ``keep_only``), as a real meter changes.
"""

from __future__ import annotations

import csv
import ctypes
import datetime
import fcntl
import io
import json
import os
import pty
import re
import sqlite3
import struct
import subprocess
import sys
import termios

import pytest

from tests.conftest import one_line
from tests.test_cli_capabilities import house, resident  # noqa: F401  (fixtures)
from tests.test_output_conventions import on_terminal

TODAY = datetime.date.today()
DAY = datetime.timedelta(days=1)
LAST_MONTH = (TODAY.replace(day=1) - DAY).replace(day=15)
EARLIER = (LAST_MONTH.replace(day=1) - DAY).replace(day=10)  # two months ago
POWER_BAR = ["TV", "Lamp", "Fridge", "Router", "Fan", "Hifi"]
BENCH = ["Scope", "Iron", "Charger", "Lamp"]
# Every meter of the house, as `--all` lists them (the order of `tpcloud list`).
METERS = ["Kettle", "Hall Bulb", "Living Room", "Old Kettle", *(f"Power Bar/{o}" for o in POWER_BAR),
          *(f"Bench/{o}" for o in BENCH)]
# Devices of the account that no route reaches: offline (Garage), or a Tapo plug only the cloud
# lists (the Kasa cloud answers -20571 for it).
UNREACHABLE = ["Garage", "Tapo Plug"]


@pytest.fixture
def metered(resident, house):
    """The resident of the house, whose cache knows the strips' outlets, with energy recorded on
    the Kettle (XOR), the Living Room plug (KLAP), a Power Bar outlet and a Bench outlet."""
    assert resident("list", "--refresh").code == 0
    kettle, plug = house.devices["Kettle"], house.devices["Living Room"]
    for day, wh in [(TODAY, 120), (LAST_MONTH, 2000), (LAST_MONTH + DAY, 250), (EARLIER, 700)]:
        kettle.record_energy(day, wh)
        plug.record_energy(day, wh // 2)
    house.devices["Power Bar"].record_energy(LAST_MONTH, 300, child_index=2)
    bench = house.devices["Bench"]
    bench.record_energy(TODAY, 750, child_id=bench.child_ids()[1])
    resident.db = resident.home / "data" / "tpcloud" / "energy.sqlite"
    resident.env["XDG_DATA_HOME"] = str(resident.home / "data")
    return resident


def dump(path) -> dict:
    """Every row of the archive, table by table."""
    db = sqlite3.connect(path)
    try:
        return {t: db.execute(f"SELECT * FROM {t} ORDER BY 1, 2, 3").fetchall()
                for t in ("meters", "days", "months", "events")}
    finally:
        db.close()


def kept(user, full_name: str, table: str) -> dict[str, float]:
    """What the archive keeps of FULL_NAME in TABLE (days or hours), by date or hour."""
    column = {"days": "date", "hours": "hour"}[table]
    db = sqlite3.connect(user.db)
    try:
        query = f"SELECT {column}, kwh FROM {table} WHERE device_id = ? AND outlet_id = ?"
        return dict(db.execute(query, identity(user, full_name)))
    finally:
        db.close()


def days_of(user, full_name: str) -> dict[str, float]:
    """What the archive keeps of FULL_NAME's days."""
    return kept(user, full_name, "days")


def table_rows(stdout: str) -> dict[str, list[str]]:
    """The rows of the readings table by name; each number lies under its heading, right-aligned
    (a blank where the meter does not measure it)."""
    header, *lines = stdout.splitlines()
    spans = [m.span() for m in re.finditer(r"\S+(?: \S+)*", header)]
    assert [header[a:b] for a, b in spans] == ["NAME", "POWER W", "VOLTAGE V", "CURRENT A", "TODAY kWh", "MONTH kWh",
                                              "TOTAL kWh"]
    return {line[:spans[1][0]].strip(): [line[a:b].strip() for a, b in spans[1:]] for line in lines}


def identity(user, full_name: str) -> tuple[str, str]:
    """The device id and outlet id ('' for a device) the account gives FULL_NAME."""
    strip, _, outlet = full_name.partition("/")
    device = next(d for d in json.loads(user("list", "--json").stdout) if d["name"] == strip)
    return device["device_id"], next(o["id"] for o in device["outlets"] if o["name"] == outlet) if outlet else ""


def errors_of(stderr: str) -> list[str]:
    return sorted(line.split(":", 2)[1].strip() for line in stderr.splitlines())


# -- several meters at once ---------------------------------------------------------------------


def test_all_meters_in_one_table_with_their_total(metered, house):
    result = metered("energy", "--all")
    assert result.code == 6, result  # Garage and Tapo Plug reach no route; every meter still prints
    rows = table_rows(result.stdout)
    assert list(rows) == [*METERS, "TOTAL"]
    assert errors_of(result.stderr) == UNREACHABLE
    assert rows["Kettle"] == ["61.8", "230.8", "0.451", "0.120", "0.120", "16.323"]
    assert rows["Bench/Iron"][3] == "0.750" and rows["Living Room"][1:3] == ["", ""]  # a P110 gives no V or A
    listed = json.loads(metered("energy", "--all", "--json").stdout)
    assert [e["name"] for e in listed if e["error"] is None] == METERS
    read = [e for e in listed if e["error"] is None]
    assert rows["TOTAL"] == [f"{sum(e['power_w'] for e in read):.1f}", "", "", f"{sum(e['today_kwh'] for e in read):.3f}",
                             f"{sum(e['month_kwh'] for e in read):.3f}", ""]  # not every meter has a total
    assert sorted(e["name"] for e in listed if e["error"] is not None) == UNREACHABLE
    kettle = next(e for e in listed if e["name"] == "Kettle")
    assert kettle["power_w"] == 61.753 and kettle["route"] == "local" and kettle["wire"] == "xor"


def test_named_meters_and_a_group_each_strip_outlet_a_row(metered, house):
    (metered.config_dir / "config.toml").write_text('[groups]\nkitchen = ["Kettle", "Bench"]\n')
    result = metered("energy", "kitchen", "Living Room")
    assert result.code == 0 and result.stderr == "", result
    assert list(table_rows(result.stdout)) == ["Kettle", *(f"Bench/{o}" for o in BENCH), "Living Room", "TOTAL"]
    one = metered("energy", "Bench")  # one name: the one line it always printed, the strip's sum
    assert one_line(one.stdout).startswith("Bench: 0.0 W; today 0.750 kWh, this month ")


def test_a_named_device_without_a_meter_fails_and_the_others_print(metered):
    result = metered("energy", "Kettle", "Desk Lamp", "Living Room")
    assert result.code == 5, result
    assert one_line(result.stderr) == "tpcloud: Desk Lamp: the device has no energy meter"
    assert list(table_rows(result.stdout)) == ["Kettle", "Living Room", "TOTAL"]
    listed = json.loads(metered("energy", "Kettle", "Desk Lamp", "--json").stdout)
    assert listed[1]["error"]["exit_code"] == 5 and listed[0]["error"] is None


def test_meters_through_the_cloud(metered, house):
    result = metered("energy", "Kettle", "Power Bar", "--via", "cloud", "--json")
    assert result.code == 0, result
    listed = json.loads(result.stdout)
    assert [e["name"] for e in listed] == ["Kettle", *(f"Power Bar/{o}" for o in POWER_BAR)]
    assert {e["route"] for e in listed} == {"cloud"}


# -- the archive --------------------------------------------------------------------------------


def test_archiving_twice_stores_the_same_rows(metered, house):
    first = metered("energy", "--all", "--archive")
    assert first.code == 6 and errors_of(first.stderr) == UNREACHABLE, first
    lines = dict(line.split(": ", 1) for line in first.stdout.splitlines())
    assert list(lines) == METERS
    assert lines["Kettle"] == "4 days and 3 months held; 7 added"
    assert lines["Power Bar/TV"] == "0 days and 0 months held; nothing new"
    stored = dump(metered.db)
    assert days_of(metered, "Kettle") == {
        EARLIER.isoformat(): 0.7, LAST_MONTH.isoformat(): 2.0, (LAST_MONTH + DAY).isoformat(): 0.25, TODAY.isoformat(): 0.12,
    }
    assert days_of(metered, "Power Bar/Fridge") == {LAST_MONTH.isoformat(): 0.3}
    assert days_of(metered, "Bench/Iron") == {TODAY.isoformat(): 0.75}
    assert len(stored["days"]) == 10 and len(stored["months"]) == 8
    assert ("Kettle" in {m[2] for m in stored["meters"]}) and stored["events"] == []
    again = metered("energy", "--all", "--archive")
    assert all(line.endswith("nothing new") for line in again.stdout.splitlines()), again
    assert dump(metered.db) == stored


def test_archive_json_csv_and_a_db_of_ones_own(metered, house, tmp_path):
    db = tmp_path / "mine.sqlite"
    result = metered("energy", "Kettle", "--archive", "--db", str(db), "--json")
    assert result.code == 0, result
    kept = json.loads(result.stdout)
    assert kept == {**kept, "name": "Kettle", "days": 4, "months": 3, "hours": 0, "added": 7, "updated": 0, "resets": 0, "gaps": 0,
                    "route": "local"}
    assert not metered.db.exists()
    rows = list(csv.reader(io.StringIO(metered("energy", "Kettle", "Living Room", "--archive", "--db", str(db),
                                              "--format", "csv").stdout)))
    assert rows[0] == ["name", "device_id", "outlet_id", "days", "months", "hours", "added", "updated", "resets", "gaps"]
    assert rows[1][0] == "Kettle" and rows[1][5:] == ["0", "0", "0", "0", "0"] and rows[2][0] == "Living Room"
    from_env = metered("energy", "Living Room", "--archive", env={"TPCLOUD_ENERGY_DB": str(tmp_path / "env.sqlite")})
    assert from_env.code == 0 and (tmp_path / "env.sqlite").exists()


def test_archiving_through_the_cloud(metered, house):
    result = metered("energy", "Kettle", "Power Bar", "--archive", "--via", "cloud")
    assert result.code == 0, result
    assert result.stdout.splitlines()[0] == "Kettle: 4 days and 3 months held; 7 added"
    assert result.stdout.splitlines()[3] == "Power Bar/Fridge: 1 day and 1 month held; 2 added"
    assert days_of(metered, "Power Bar/Fridge") == {LAST_MONTH.isoformat(): 0.3}


def test_a_meter_that_resets_keeps_its_history_in_the_archive(metered, house):
    kettle = house.devices["Kettle"]
    assert metered("energy", "Kettle", "--archive").code == 0
    kettle.reset_meter()
    kettle.record_energy(TODAY, 20)
    after = metered("energy", "Kettle", "--archive")
    assert after.code == 0, after
    # today's figure and this month's are lower (resets); last month's two days and the two
    # earlier months' figures are no longer held (gaps)
    assert after.stdout.strip() == "Kettle: 1 day and 1 month held; 2 resets, 4 gaps"
    stored = dump(metered.db)
    assert days_of(metered, "Kettle")[TODAY.isoformat()] == 0.12  # never lowered
    kinds = {(e[2], e[3], e[4]) for e in stored["events"]}
    assert ("day", TODAY.isoformat(), "reset") in kinds and ("month", TODAY.isoformat()[:7], "reset") in kinds
    history = json.loads(metered("energy", "Kettle", "--daily", "--json").stdout)
    assert {e["date"]: (e["kwh"], e["source"]) for e in history["entries"]}[TODAY.isoformat()] == (0.12, "archive")
    last = json.loads(metered("energy", "Kettle", "--daily", "--month", str(LAST_MONTH.month), "--year",
                              str(LAST_MONTH.year), "--json").stdout)
    assert [(e["kwh"], e["source"]) for e in last["entries"]] == [(2.0, "archive"), (0.25, "archive")]
    text = metered("energy", "Kettle", "--daily", "--month", str(LAST_MONTH.month), "--year", str(LAST_MONTH.year))
    assert text.stdout.splitlines()[1] == f"  {LAST_MONTH.isoformat()}      2.000  archive"
    assert metered("energy", "Kettle", "--archive").stdout.strip().endswith("nothing new")


def test_a_meter_that_forgets_old_days(metered, house):
    plug, old = house.devices["Living Room"], house.devices["Old Kettle"]
    old.record_energy(LAST_MONTH, 900)
    assert metered("energy", "Living Room", "Old Kettle", "--archive").code == 0
    for device in (plug, old):
        device.keep_only(days=2, months=1)
    kept = metered("energy", "Living Room", "Old Kettle", "--archive")
    assert kept.code == 0, kept
    assert "gap" in kept.stdout.splitlines()[0] and "gap" in kept.stdout.splitlines()[1]
    month = ("--month", str(LAST_MONTH.month), "--year", str(LAST_MONTH.year))
    for name, figures in (("Living Room", [(1.0, "archive"), (0.125, "archive")]), ("Old Kettle", [(0.9, "archive")])):
        history = json.loads(metered("energy", name, "--daily", *month, "--json").stdout)
        assert [(e["kwh"], e["source"]) for e in history["entries"] if e["kwh"]] == figures, name
    text = metered("energy", "Living Room", "--daily", *month).stdout.splitlines()
    assert f"  {LAST_MONTH.isoformat()}      1.000  archive" in text
    monthly = json.loads(metered("energy", "Living Room", "--monthly", "--year", str(LAST_MONTH.year), "--json").stdout)
    by_month = {e["date"]: e for e in monthly["entries"]}
    assert by_month[LAST_MONTH.isoformat()[:7]]["source"] == "archive"


def test_an_archive_query_as_csv(metered, house):
    assert metered("energy", "--all", "--archive").code == 6
    start, end = EARLIER.replace(day=1), LAST_MONTH
    args = ("energy", "Kettle", "--daily", "--from", start.isoformat(), "--to", end.isoformat(), "--format", "csv")
    raw = subprocess.run([sys.executable, "-m", "tpcloud", *args], env=metered.env, cwd=metered.home,
                         capture_output=True, stdin=subprocess.DEVNULL, timeout=60)
    assert raw.returncode == 0 and raw.stdout.count(b"\r\n") == 3 and raw.stdout.endswith(b"\r\n"), raw  # RFC 4180
    rows = list(csv.reader(io.StringIO(raw.stdout.decode(), newline="")))
    assert rows[0] == ["name", "device_id", "outlet_id", "period", "date", "kwh", "source"]
    kettle = house.devices["Kettle"].device_id
    assert rows[1:] == [["Kettle", kettle, "", "daily", EARLIER.isoformat(), "0.7", "archive"],
                        ["Kettle", kettle, "", "daily", LAST_MONTH.isoformat(), "2.0", "archive"]]
    every = list(csv.DictReader(io.StringIO(metered("energy", "--all", "--monthly", "--from", start.isoformat()[:7],
                                                   "--format", "csv").stdout)))
    assert {row["name"] for row in every} == {"Kettle", "Living Room", "Power Bar/Fridge", "Bench/Iron"}
    assert {row["date"] for row in every if row["name"] == "Kettle"} == {EARLIER.isoformat()[:7], LAST_MONTH.isoformat()[:7],
                                                                        TODAY.isoformat()[:7]}
    data = json.loads(metered("energy", "Kettle", "--daily", "--from", start.isoformat(), "--json").stdout)
    assert data["from"] == start.isoformat() and data["to"] == TODAY.isoformat() and data["year"] is None
    assert [e["date"] for e in data["entries"]][-1] == TODAY.isoformat()
    text = metered("energy", "Kettle", "--daily", "--to", LAST_MONTH.isoformat()[:7]).stdout.splitlines()
    assert text[0] == f"Kettle: kWh per day from the archive, up to {(TODAY.replace(day=1) - DAY).isoformat()}"
    whole = json.loads(metered("energy", "Power Bar", "--monthly", "--from", "2000-01", "--json").stdout)
    assert whole["entries"] == [{"date": LAST_MONTH.isoformat()[:7], "kwh": 0.3, "source": "archive"}]


def test_an_archive_query_asks_no_device(metered, house):
    assert metered("energy", "Kettle", "--archive").code == 0
    kettle = house.devices["Kettle"]
    asked = len(kettle.requests)
    assert metered("energy", "Kettle", "--daily", "--from", "2000-01-01").code == 0
    assert len(kettle.requests) == asked


# -- hours (Tapo meters) ------------------------------------------------------------------------

MIDNIGHT = datetime.datetime(TODAY.year, TODAY.month, TODAY.day)


def hours_of(user, full_name: str) -> dict[str, float]:
    """What the archive keeps of FULL_NAME's hours."""
    return kept(user, full_name, "hours")


@pytest.fixture
def hourly(metered, house):
    """Hours on the Living Room P110 (today 00:00, and 10 days ago: another 8-day window) and on
    a Bench (P304M) outlet, both over KLAP."""
    plug, bench = house.devices["Living Room"], house.devices["Bench"]
    plug.record_hourly(MIDNIGHT, 40)
    plug.record_hourly(MIDNIGHT - 10 * DAY + datetime.timedelta(hours=13), 250)
    bench.record_hourly(MIDNIGHT, 75, child_id=bench.child_ids()[1])
    return metered


def test_hours_are_archived_from_tapo_meters_and_twice_is_the_same_rows(hourly, house):
    first = hourly("energy", "Living Room", "Bench", "Kettle", "--archive")
    assert first.code == 0, first
    lines = dict(line.split(": ", 1) for line in first.stdout.splitlines())
    assert lines["Living Room"].startswith("5 days, 3 months and 2 hours held; ")
    assert lines["Bench/Iron"].startswith("1 day, 1 month and 1 hour held; ")
    assert lines["Kettle"] == "4 days and 3 months held; 7 added"  # a Kasa meter: no hours asked
    ten_days_ago = (MIDNIGHT - 10 * DAY).strftime("%Y-%m-%dT13")
    assert hours_of(hourly, "Living Room") == {MIDNIGHT.strftime("%Y-%m-%dT00"): 0.04, ten_days_ago: 0.25}
    assert hours_of(hourly, "Bench/Iron") == {MIDNIGHT.strftime("%Y-%m-%dT00"): 0.075}
    stored = dump(hourly.db), sqlite3.connect(hourly.db).execute("SELECT * FROM hours ORDER BY 1, 2, 3").fetchall()
    again = hourly("energy", "Living Room", "Bench", "Kettle", "--archive", "--json")
    assert {e["added"] + e["updated"] for e in json.loads(again.stdout)} == {0}, again
    assert (dump(hourly.db), sqlite3.connect(hourly.db).execute("SELECT * FROM hours ORDER BY 1, 2, 3").fetchall()) == stored
    hourly_requests = [r for r in house.devices["Living Room"].requests
                       if r.get("method") == "get_energy_data" and r["params"]["interval"] == 60]
    assert len(hourly_requests) == 2 * 3  # per run: this window, the one 10 days ago, an empty one


def test_hours_as_csv_from_the_archive_and_from_the_device(hourly, house):
    assert hourly("energy", "Living Room", "--archive").code == 0
    house.devices["Living Room"].keep_only(hour_days=1)  # the plug forgets the hour 10 days ago
    rows = list(csv.reader(io.StringIO(hourly("energy", "Living Room", "--hourly", "--from",
                                              (TODAY - 30 * DAY).isoformat(), "--format", "csv").stdout)))
    plug = identity(hourly, "Living Room")[0]
    assert rows == [["name", "device_id", "outlet_id", "period", "date", "kwh", "source"],
                    ["Living Room", plug, "", "hourly", (MIDNIGHT - 10 * DAY).strftime("%Y-%m-%dT13"), "0.25", "archive"],
                    ["Living Room", plug, "", "hourly", MIDNIGHT.strftime("%Y-%m-%dT00"), "0.04", "archive"]]
    device = hourly("energy", "Living Room", "--hourly", "--json")
    assert device.code == 0, device
    entries = json.loads(device.stdout)["entries"]
    assert entries[0]["date"] == (TODAY - 7 * DAY).isoformat() + "T00" and entries[-1]["date"] <= datetime.datetime.now().strftime("%Y-%m-%dT%H")
    assert {e["date"]: (e["kwh"], e["source"]) for e in entries}[MIDNIGHT.strftime("%Y-%m-%dT00")] == (0.04, "device")
    text = hourly("energy", "Living Room", "--hourly").stdout.splitlines()
    assert text[0] == f"Living Room: kWh per hour, {(TODAY - 7 * DAY).isoformat()} to {TODAY.isoformat()}"
    assert f"  {MIDNIGHT.strftime('%Y-%m-%dT00')}      0.040" in text


def test_a_kasa_meter_keeps_no_hours(hourly, house):
    for args in (("Kettle", "--hourly"), ("Kettle", "--hourly", "--from", TODAY.isoformat())):
        assert hourly("energy", "Kettle", "--archive").code == 0
        result = hourly("energy", *args)
        assert result.code == 5 and result.stdout == "", result
        assert one_line(result.stderr).endswith("the device keeps no hourly energy figures "
                                                "(Kasa meters keep days and months only)")
    every = hourly("energy", "--all", "--hourly", "--from", TODAY.isoformat(), "--format", "csv")
    assert every.code == 0 and "Kettle" not in every.stdout, every  # --all passes over meters without hours


# -- the chart ----------------------------------------------------------------------------------


def on_sized_terminal(args: list[str], env: dict, columns: int, cwd) -> tuple[int, str]:
    """Run tpcloud with stdout on a pseudo-terminal COLUMNS wide; its exit code and output."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    attrs = termios.tcgetattr(slave)
    attrs[1] &= ~termios.ONLCR  # the lines as written, without the terminal's CR before each LF
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    proc = subprocess.Popen([sys.executable, "-m", "tpcloud", *args], stdin=subprocess.DEVNULL, stdout=slave,
                            stderr=subprocess.PIPE, env=env, cwd=cwd)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    proc.wait(timeout=60)
    os.close(master)
    return proc.returncode, out.decode()


def test_a_history_on_a_terminal_is_a_chart_as_wide_as_the_terminal(metered):
    env = {**metered.env, "TERM": "xterm-256color"}
    month = ["energy", "Kettle", "--daily", "--month", str(LAST_MONTH.month), "--year", str(LAST_MONTH.year)]
    code, out = on_sized_terminal(month, env, 72, metered.home)
    assert code == 0, out
    lines = out.splitlines()
    assert max(len(line) for line in lines) == 72 == len(lines[1]) and lines[1].endswith("█")
    assert lines[1].startswith(f"  {LAST_MONTH.isoformat()}      2.000  ") and "\x1b[" not in out
    assert lines[-1] == "  total           2.250"
    code, narrower = on_sized_terminal(month, {**env, "COLUMNS": "50"}, 72, metered.home)
    assert max(len(line) for line in narrower.splitlines()) == 50
    plain = metered(*month).stdout.splitlines()  # into a pipe: today's columns, no bars
    assert plain[1] == f"  {LAST_MONTH.isoformat()}      2.000"
    code, no_color = on_sized_terminal(month, {**env, "NO_COLOR": "1"}, 72, metered.home)
    assert no_color.splitlines() == plain
    status, out, err = on_terminal(tuple(month), {**env, "NO_COLOR": "1"}, cwd=metered.home)
    assert status == 0 and out.replace("\r\n", "\n").splitlines() == plain


# -- a broken archive, and what is refused before anything is read --------------------------------


def _without_dac_override() -> None:
    """In a child run as root: give up CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH (prctl
    PR_CAPBSET_DROP), so the folder's mode binds it as it binds any user."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):
        if libc.prctl(24, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_an_archive_in_a_folder_that_cannot_be_written(metered, house):
    folder = metered.home / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    kettle = house.devices["Kettle"]
    asked = len(kettle.requests)
    args = [sys.executable, "-m", "tpcloud", "energy", "Kettle", "--archive", "--db", str(folder / "energy.sqlite")]
    try:
        proc = subprocess.run(args, env=metered.env, cwd=metered.home, capture_output=True, text=True, timeout=60,
                              stdin=subprocess.DEVNULL, preexec_fn=_without_dac_override if os.geteuid() == 0 else None)
    finally:
        folder.chmod(0o755)
    assert proc.returncode == 12, proc
    line = one_line(proc.stderr)
    assert line.startswith(f"tpcloud: cannot write the energy archive {folder / 'energy.sqlite'}: ") and proc.stdout == ""
    assert list(folder.iterdir()) == [] and len(kettle.requests) == asked  # nothing written, no device asked


def test_an_archive_whose_folder_is_a_file(metered):
    (metered.home / "notafolder").write_text("x")
    result = metered("energy", "Kettle", "--archive", "--db", str(metered.home / "notafolder" / "energy.sqlite"))
    assert result.code == 12 and "cannot make the folder of the energy archive" in one_line(result.stderr)


def test_a_corrupt_archive_is_one_line_and_left_as_it_is(metered, house):
    metered.db.parent.mkdir(parents=True)
    metered.db.write_bytes(b"\x00garbage, not SQLite" * 300)
    before = metered.db.read_bytes()
    for args in (("--all", "--archive"), ("Kettle", "--daily"), ("Kettle", "--monthly", "--from", "2025-01")):
        result = metered("energy", *args)
        assert result.code == 12 and result.stdout == "", result
        assert one_line(result.stderr).startswith(f"tpcloud: cannot read the energy archive {metered.db}: file is not a database")
        assert "move it aside" in result.stderr
    assert metered.db.read_bytes() == before and sorted(metered.db.parent.iterdir()) == [metered.db]
    doctor = json.loads(metered("doctor", "--json").stdout)
    check = next(c for c in doctor if c["check"] == "energy archive")
    assert check["status"] == "problem" and "file is not a database" in check["detail"]
    assert metered("doctor").code == 12


def test_doctor_shows_the_archive(metered):
    def check():
        return next(c for c in json.loads(metered("doctor", "--json").stdout) if c["check"] == "energy archive")

    assert check() == {"check": "energy archive", "status": "ok", "fix": None,
                       "detail": f"none yet at {metered.db}; `tpcloud energy --all --archive` starts it"}
    assert not metered.db.exists()
    metered("energy", "--all", "--archive")
    before = dump(metered.db)
    detail = check()["detail"]
    assert detail.startswith(f"{metered.db}: ") and ", 14 meters, 10 days, 8 months, 0 resets and gaps seen" in detail
    assert dump(metered.db) == before and sorted(metered.db.parent.iterdir()) == [metered.db]


def test_two_archive_runs_at_once_take_turns(metered, house):
    procs = [subprocess.Popen([sys.executable, "-m", "tpcloud", "energy", "--all", "--archive"], env=metered.env,
                              cwd=metered.home, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(2)]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 6, err  # the two unreachable devices, nothing about the archive
        assert b"archive" not in err
    both = dump(metered.db)
    assert metered("energy", "--all", "--archive").code == 6
    assert dump(metered.db) == both and len(both["days"]) == 10


MISTAKES = [
    (("Kettle", "--archive", "--daily"), "--archive stores every day, month and hour"),
    (("Kettle", "--from", "2025-01-01"), "--from and --to go with --daily, --monthly or --hourly"),
    (("Kettle", "--daily", "--from", "2025-02-01", "--to", "2025-01-31"), "--from 2025-02-01 is after --to 2025-01-31"),
    (("Kettle", "--daily", "--month", "3", "--to", "2025-01-31"), "cannot be combined with --month or --year"),
    (("Kettle", "--daily", "--from", "yesterday"), "--from takes a date such as 2025-03-31"),
    (("Kettle", "--json", "--format", "csv"), "--json is --format json"),
    (("Living Room", "--hourly", "--daily"), "--daily, --monthly and --hourly cannot be combined"),
    (("Living Room", "--hourly", "--year", "2025"), "--hourly takes no --month or --year"),
    (("--all", "Kettle"), "--all covers every meter; name none with it"),
    ((), "name a device, outlet or group, or pass --all"),
    (("Kettle", "--db", "x.sqlite"), "--db goes with --archive, --daily, --monthly or --hourly"),
]


def test_option_mistakes_change_nothing(metered, house):
    kettle = house.devices["Kettle"]
    asked = len(kettle.requests)
    for args, message in MISTAKES:
        result = metered("energy", *args)
        assert result.code == 2 and message in one_line(result.stderr), result
    assert len(kettle.requests) == asked and not metered.db.parent.exists()


def test_a_typo_in_a_name_creates_no_archive(metered):
    result = metered("energy", "Kettle", "Kettel", "--archive")
    assert result.code == 4 and not metered.db.parent.exists()


def test_readings_and_histories_without_an_archive_load_no_sqlite(metered):
    for args in (("energy", "Kettle"), ("energy", "Kettle", "Living Room"), ("energy", "Kettle", "--daily")):
        result, modules = metered.loaded_modules(*args)
        assert result.code == 0, result
        assert "sqlite3" not in modules and "_sqlite3" not in modules, args



def test_the_json_shapes_are_those_the_docs_document(metered):
    from tests.test_output_conventions import documented_keys

    kept = json.loads(metered("energy", "Kettle", "Living Room", "--archive", "--json").stdout)
    assert all(set(e) == documented_keys("energy --archive --json") | {"wire", "address", "error"} for e in kept)
    found = json.loads(metered("energy", "Kettle", "--daily", "--from", "2000-01-01", "--json").stdout)
    assert set(found) == documented_keys("energy --daily|--monthly|--hourly --from DATE --to DATE --json")
    assert set(found["entries"][0]) == {"date", "kwh", "source"}
