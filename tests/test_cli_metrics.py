"""`tpcloud metrics`, end to end: one pass over the emulated home's devices, read back with a
real Prometheus text-format parser (prometheus_client's), the InfluxDB line protocol's grammar
and JSON; written atomically for node_exporter's textfile collector; a dead plug is `up 0`.

The `house` is tests/test_cli_capabilities.py's: the emulated home plus energy plugs of both
Kasa unit styles, an HS300 with a meter per outlet, a Kasa colour bulb and a P304M strip.
"""

from __future__ import annotations

import json
import re

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.test_cli_capabilities import house, resident  # noqa: F401  (fixtures)


def families(text: str) -> dict[str, dict[tuple, float]]:
    """Each family's samples, by (name, outlet) label, as the Prometheus parser reads them."""
    parsed: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            parsed.setdefault(sample.name, {})[(sample.labels["name"], sample.labels["route"])] = sample.value
    return parsed


def test_prometheus_text_of_every_device_parses_and_holds_each_meter(resident, house):
    result = resident("metrics", "--all")
    assert result.code == 0, result
    found = families(result.stdout)

    up = found["tplink_up"]
    assert up[("Kettle", "local")] == 1 and up[("Garage", "none")] == 0  # Garage is offline
    assert up[("Power Bar/TV", "local")] == 1 and up[("Bench/Scope", "local")] == 1
    assert found["tplink_power_watts"][("Kettle", "local")] == pytest.approx(61.753)
    assert found["tplink_voltage_volts"][("Kettle", "local")] == pytest.approx(230.837)
    assert found["tplink_energy_kwh_total"][("Kettle", "local")] == pytest.approx(16.323)
    assert ("Old Kettle", "local") in found["tplink_power_watts"]
    # A plug without a meter is up, and on or off, with no power series.
    assert ("Desk Lamp", "local") in found["tplink_on"] and ("Desk Lamp", "local") not in found["tplink_power_watts"]
    # Every outlet of both strips has its own series, and a dead plug has only `up`.
    outlets = {name for name, _ in found["tplink_power_watts"] if "/" in name}
    assert {f"Power Bar/{o}" for o in ("TV", "Lamp", "Fridge", "Router", "Fan", "Hifi")} <= outlets
    assert {f"Bench/{o}" for o in ("Scope", "Iron", "Charger", "Lamp")} <= outlets
    assert all(("Garage", "none") not in samples for name, samples in found.items() if name != "tplink_up")
    assert "# TYPE tplink_energy_kwh_total counter" in result.stdout


def test_labels_carry_model_outlet_and_device_id(resident, house):
    result = resident("metrics", "Power Bar/Fridge", "Kettle")
    assert result.code == 0, result
    up = next(f for f in text_string_to_metric_families(result.stdout) if f.name == "tplink_up")
    labels = {s.labels["name"]: s.labels for s in up.samples}
    fridge, kettle = labels["Power Bar/Fridge"], labels["Kettle"]
    assert fridge["outlet"] == "Fridge" and fridge["model"].startswith("HS300")
    assert fridge["device_id"] == house.devices["Power Bar"].device_id
    assert kettle["outlet"] == "" and kettle["route"] == "local"


INFLUX_LINE = re.compile(
    r"^tplink(?P<tags>(?:,[a-z_]+=(?:[^,= \\]|\\[,= \\])+)+) "
    r"(?P<fields>[a-z_]+=(?:-?\d+i|-?[\d.e+-]+)(?:,[a-z_]+=(?:-?\d+i|-?[\d.e+-]+))*) (?P<time>\d{19})$"
)


def test_influx_line_protocol_escapes_its_tags(resident, house):
    result = resident("metrics", "Kettle", "Power Bar/TV", "Garage", "--format", "influx")
    assert result.code == 0, result
    lines = result.stdout.splitlines()
    assert len(lines) == 3 and all(INFLUX_LINE.match(line) for line in lines), lines
    by_name = {re.search(r",name=((?:[^,\\]|\\.)+)", line)[1]: line for line in lines}
    assert set(by_name) == {"Kettle", "Power\\ Bar/TV", "Garage"}
    assert " up=1i,on=" in by_name["Kettle"] and "power_w=61.753" in by_name["Kettle"]
    assert " up=0i " in by_name["Garage"] and ",route=none" in by_name["Garage"]
    assert ",outlet=TV" in by_name["Power\\ Bar/TV"] and ",outlet=" not in by_name["Kettle"]


def test_ndjson_is_a_record_per_target(resident, house):
    result = resident("metrics", "Kettle", "Desk Lamp", "Garage", "--format", "ndjson")
    assert result.code == 0, result
    records = {r["name"]: r for r in map(json.loads, result.stdout.splitlines())}
    assert records["Kettle"]["up"] is True and records["Kettle"]["power_w"] == 61.753
    assert records["Desk Lamp"]["up"] is True and "power_w" not in records["Desk Lamp"]
    assert records["Garage"]["up"] is False and records["Garage"]["error"]
    assert all(r["time"].endswith("+00:00") for r in records.values())


def test_output_file_is_written_in_one_step_for_the_textfile_collector(resident, house, tmp_path):
    folder = tmp_path / "textfile"
    folder.mkdir()
    target = folder / "tplink.prom"
    target.write_text("old\n")
    result = resident("metrics", "Kettle", "--output", str(target))
    assert result.code == 0 and result.stdout == "", result
    assert "tplink_power_watts" in target.read_text()
    assert target.stat().st_mode & 0o777 == 0o644  # node_exporter runs as another user
    assert sorted(p.name for p in folder.iterdir()) == ["tplink.prom"]  # no temporary file left


@pytest.mark.parametrize("args, says", [
    ([], "name devices or groups, or pass --all"),
    (["Kettle", "--format", "xml"], "Invalid value for '--format'"),
    (["Kettle", "--output", "/nonexistent/dir/x.prom"], "is not a folder"),
])
def test_bad_metrics_input_is_one_line(resident, args, says):
    result = resident("metrics", *args)
    assert result.code == 2 and says in result.stderr, result


def test_an_output_that_cannot_be_written_is_one_line_and_leaves_nothing_behind(resident, house, tmp_path):
    folder = tmp_path / "textfile"
    (folder / "tplink.prom").mkdir(parents=True)  # a folder where the file should go (root ignores modes)
    result = resident("metrics", "Kettle", "--output", str(folder / "tplink.prom"))
    assert result.code == 2 and "cannot write" in result.stderr and len(result.stderr.splitlines()) == 1, result
    assert [p.name for p in folder.iterdir()] == ["tplink.prom"] and (folder / "tplink.prom").is_dir()
