"""The metrics formats below the command line: names that need escaping survive each format's
own parser (Prometheus's; the line protocol's grammar), and a point without a sample is `up`
0 with nothing else."""

from __future__ import annotations

import json

from prometheus_client.parser import text_string_to_metric_families

from tpcloud.capabilities.energy import Reading
from tpcloud.capabilities.sample import Measured
from tpcloud.metrics import Point, influx, ndjson, prometheus

AWKWARD = 'Mum\'s "big" lamp, \\ kitchen\nline two'


def point(name: str = AWKWARD, sample: Measured | None = Measured(0, True, Reading(12.5, 230.1, 0.05, 0.2, 3.0, 41.0))) -> Point:
    return Point(name=name, model="HS110(EU)", outlet="", device_id="8006AB", route="local" if sample else "none",
                 sample=sample, error=None if sample else "no route worked")


def test_prometheus_labels_are_escaped_and_parse_back():
    text = prometheus([point(), point("Garage", None)], now=0)
    parsed = {(f.name, s.labels["name"]): s.value for f in text_string_to_metric_families(text) for s in f.samples}
    assert parsed[("tplink_up", AWKWARD)] == 1 and parsed[("tplink_up", "Garage")] == 0
    assert parsed[("tplink_power_watts", AWKWARD)] == 12.5
    assert parsed[("tplink_energy_kwh", AWKWARD)] == 41.0  # the parser names a counter without _total
    assert "# TYPE tplink_energy_kwh_total counter" in text and "tplink_energy_kwh_total{" in text
    assert not any(name == "tplink_on" and who == "Garage" for name, who in parsed)


def test_a_reading_without_some_figures_has_no_series_for_them():
    text = prometheus([point("Tapo", Measured(0, False, Reading(0.0, None, None, 0.1, 0.5, None)))], now=0)
    names = {f.name for f in text_string_to_metric_families(text)}
    assert names == {"tplink_up", "tplink_on", "tplink_power_watts", "tplink_energy_today_kwh", "tplink_energy_month_kwh"}


def test_influx_escapes_tags_and_types_its_fields():
    (line,) = influx([point("Desk Lamp, left=1")], now=1.5).splitlines()
    assert line.startswith("tplink,name=Desk\\ Lamp\\,\\ left\\=1,model=HS110(EU),route=local,device_id=8006AB ")
    assert " up=1i,on=1i,power_w=12.5,voltage_v=230.1,current_a=0.05," in line
    assert line.endswith(" 1500000000")


def test_ndjson_keeps_the_name_as_it_is():
    records = [json.loads(line) for line in ndjson([point(), point("Garage", None)], now=0).splitlines()]
    assert records[0]["name"] == AWKWARD and records[0]["on"] is True and records[0]["total_kwh"] == 41.0
    assert records[1] == {"time": "1970-01-01T00:00:00+00:00", "name": "Garage", "model": "HS110(EU)", "outlet": "",
                          "route": "none", "device_id": "8006AB", "up": False, "error": "no route worked"}
