"""Tests of the test doubles themselves: the IOT device emulator and the fake V1 cloud."""

from __future__ import annotations

import base64
import json
import threading

import httpx
import pytest

from tests.doubles.cloud.v1 import FakeCloud
from tests.doubles.devices.iot import FIXTURES_DIR, IotDevice, load_fixture

USER = "user@example.com"
PASSWORD = "hunter2-Secret!"
TERMINAL = "6f1c1e2a-1d0b-4c5e-9f0a-2b3c4d5e6f70"

# one pooled client: a fresh httpx.post() builds an SSL context each time (~40 ms)
HTTP = httpx.Client(timeout=5)


# ---------------------------------------------------------------------------- helpers
def call(url: str, method: str | None, params: dict | None = None, token: str | None = None,
         **kw) -> dict:
    body: dict = {}
    if method is not None:
        body["method"] = method
    if params is not None:
        body["params"] = params
    q = {"token": token} if token else None
    r = HTTP.post(url, params=q, json=body, timeout=5, **kw)
    assert r.status_code == 200, r.text
    return r.json()


def login_params(**over) -> dict:
    p = {
        "appType": "Kasa_Android",
        "cloudUserName": USER,
        "cloudPassword": PASSWORD,
        "terminalUUID": TERMINAL,
        "refreshTokenNeeded": True,
    }
    p.update(over)
    return {k: v for k, v in p.items() if v is not None}


def login(cloud: FakeCloud, url: str | None = None) -> dict:
    reply = call(url or cloud.url, "login", login_params())
    assert reply["error_code"] == 0, reply
    return reply["result"]


def passthrough(url: str, token: str, device_id: str, request: dict) -> dict:
    return call(url, "passthrough",
                {"deviceId": device_id, "requestData": json.dumps(request)}, token)


def device_reply(reply: dict) -> dict:
    assert reply["error_code"] == 0, reply
    data = reply["result"]["responseData"]
    assert isinstance(data, str)
    return json.loads(data)


@pytest.fixture
def cloud():
    with FakeCloud() as c:
        yield c


@pytest.fixture
def token(cloud):
    return login(cloud)["token"]


# ---------------------------------------------------------------------------- fixtures copied
def test_fixture_files_present_with_readme():
    readme = (FIXTURES_DIR / "README.md").read_text()
    assert "python-kasa" in readme and "GPL-3.0" in readme
    for name in ["HS103(US)_2.1_1.1.4", "HS300(US)_2.0_1.0.12", "KP303(US)_2.0_1.0.9",
                 "KL130(US)_1.0_1.8.11", "HS220(US)_1.0_1.5.7", "HS110(EU)_4.0_1.0.4"]:
        assert (FIXTURES_DIR / "iot" / f"{name}.json").is_file()
    assert (FIXTURES_DIR / "smart" / "P110(EU)_1.0_1.2.3.json").is_file()


# ---------------------------------------------------------------------------- HTTP basics
def test_two_servers_distinct(cloud):
    assert cloud.url.startswith("http://127.0.0.1:")
    assert cloud.regional_url.startswith("http://127.0.0.1:")
    assert cloud.url != cloud.regional_url


def test_only_post_root(cloud):
    r = HTTP.post(cloud.url + "/api/v1", json={"method": "login", "params": login_params()})
    assert r.status_code == 404
    r = HTTP.get(cloud.url + "/")
    assert r.status_code == 405
    assert cloud.count("login") == 1  # the 404 request is logged with its method
    assert cloud.last().path == "/"


def test_body_errors(cloud):
    r = HTTP.post(cloud.url, content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.json() == {"error_code": -10100, "msg": "JSON format error"}
    r = HTTP.post(cloud.url, content=b"", headers={"Content-Type": "application/json"})
    assert r.json()["error_code"] == -10101
    r = HTTP.post(cloud.url, content=b"[1,2]")
    assert r.json()["error_code"] == -10100
    assert call(cloud.url, "noSuchMethod", {})["error_code"] == -20103
    assert call(cloud.url, None, {})["error_code"] == -20103
    assert call(cloud.url, "login")["error_code"] == -20104


# ---------------------------------------------------------------------------- login
def test_login_success_fields(cloud):
    res = login(cloud)
    for key in ("accountId", "regTime", "countryCode", "email", "nickname", "riskDetected",
                "token", "refreshToken"):
        assert key in res
    assert res["email"] == USER
    assert res["token"] in cloud.issued_tokens
    assert res["refreshToken"] in cloud.issued_refresh_tokens
    assert cloud.terminal_uuids == [TERMINAL]
    assert len(res["token"]) >= 20
    assert login(cloud)["token"] != res["token"]  # random per login


def test_login_on_regional_host_and_without_refresh_token(cloud):
    reply = call(cloud.regional_url, "login", login_params(refreshTokenNeeded=None))
    assert reply["error_code"] == 0
    assert "refreshToken" not in reply["result"]
    assert cloud.last("login").server == "regional"


def test_login_errors(cloud):
    r = call(cloud.url, "login", login_params(cloudPassword="wrong"))
    assert r == {"error_code": -20601, "msg": "Incorrect email or password"}
    assert call(cloud.url, "login", login_params(cloudUserName="nobody@example.com"))[
        "error_code"] == -20600
    for missing in ("appType", "cloudUserName", "cloudPassword", "terminalUUID"):
        p = login_params()
        del p[missing]
        assert call(cloud.url, "login", p)["error_code"] == -20104, missing
    assert cloud.issued_tokens == []


def test_login_mfa_account():
    with FakeCloud(mfa_required=True) as c:
        assert call(c.url, "login", login_params())["error_code"] == -23003


# ---------------------------------------------------------------------------- tokens
def test_refresh_token_flow(cloud):
    res = login(cloud)
    r = call(cloud.url, "refreshToken", {"appType": "Kasa_Android", "terminalUUID": TERMINAL,
                                         "refreshToken": res["refreshToken"]})
    assert r["error_code"] == 0
    new = r["result"]
    assert new["token"] != res["token"] and new["refreshToken"] != res["refreshToken"]
    assert call(cloud.url, "getDeviceList", token=new["token"])["error_code"] == 0

    wrong_terminal = call(cloud.url, "refreshToken", {
        "appType": "Kasa_Android", "terminalUUID": "other", "refreshToken": new["refreshToken"]})
    assert wrong_terminal["error_code"] == -20656
    unknown = call(cloud.url, "refreshToken", {
        "appType": "Kasa_Android", "terminalUUID": TERMINAL, "refreshToken": "nope"})
    assert unknown["error_code"] == -20656
    missing = call(cloud.url, "refreshToken", {"appType": "Kasa_Android",
                                               "refreshToken": new["refreshToken"]})
    assert missing["error_code"] == -20104

    cloud.expire_refresh_tokens()
    expired = call(cloud.url, "refreshToken", {
        "appType": "Kasa_Android", "terminalUUID": TERMINAL, "refreshToken": new["refreshToken"]})
    assert expired["error_code"] == -20655


def test_used_refresh_token_can_be_invalidated():
    with FakeCloud(invalidate_used_refresh_tokens=True) as c:
        rt = login(c)["refreshToken"]
        p = {"appType": "Kasa_Android", "terminalUUID": TERMINAL, "refreshToken": rt}
        assert call(c.url, "refreshToken", p)["error_code"] == 0
        assert call(c.url, "refreshToken", p)["error_code"] == -20656


def test_token_required_and_expiry(cloud, token):
    assert call(cloud.url, "getDeviceList")["error_code"] == -20652
    assert call(cloud.url, "getDeviceList", token="bogus") == {
        "error_code": -20652, "msg": "Token incorrect"}
    assert call(cloud.regional_url, "getDeviceList", token=token)["error_code"] == 0
    cloud.expire_tokens()
    assert call(cloud.url, "getDeviceList", token=token) == {
        "error_code": -20651, "msg": "Token expired"}
    assert call(cloud.regional_url, "passthrough", {"deviceId": "X", "requestData": "{}"},
                token)["error_code"] == -20651
    fresh = login(cloud)["token"]
    assert call(cloud.url, "getDeviceList", token=fresh)["error_code"] == 0


# ---------------------------------------------------------------------------- device list
def test_device_list_fields(cloud, token):
    plug = cloud.add_iot_device("HS103(US)_2.1_1.1.4.json", "Desk Lamp")
    strip = cloud.add_iot_device("KP303(US)_2.0_1.0.9.json", "Office Strip", region="login")
    off = cloud.add_iot_device("HS103(US)_2.1_1.1.4.json", "Garage", online=False)
    tapo = cloud.add_smart_device("P110(EU)_1.0_1.2.3.json", "Küche Plug")
    lst = call(cloud.url, "getDeviceList", token=token)["result"]["deviceList"]
    assert len(lst) == 4
    by_id = {d["deviceId"]: d for d in lst}
    fields = {"deviceType", "alias", "deviceName", "deviceModel", "deviceId", "deviceMac",
              "appServerUrl", "deviceRegion", "status", "fwVer", "deviceHwVer", "role", "oemId",
              "hwId", "fwId", "isSameRegion"}
    for d in lst:
        assert fields <= set(d), fields - set(d)
        assert len(d["deviceId"]) == 40 and int(d["deviceId"], 16) >= 0
        assert len(d["deviceMac"]) == 12 and int(d["deviceMac"], 16) >= 0
    assert len({d["deviceId"] for d in lst}) == 4
    assert len({d["deviceMac"] for d in lst}) == 4

    p = by_id[plug.device_id]
    assert p["alias"] == "Desk Lamp" and p["deviceType"] == "IOT.SMARTPLUGSWITCH"
    assert p["deviceModel"] == "HS103(US)" and p["status"] == 1
    assert p["appServerUrl"] == cloud.regional_url and p["fwVer"].startswith("1.1.4")
    assert p["deviceMac"] == plug.mac
    assert by_id[strip.device_id]["appServerUrl"] == cloud.url
    assert by_id[off.device_id]["status"] == 0

    t = by_id[tapo.device_id]
    assert t["deviceType"] == "SMART.TAPOPLUG" and t["status"] == 0
    assert t["deviceModel"] == "P110(EU)"
    assert base64.b64decode(t["alias"]).decode("utf-8") == "Küche Plug"


def test_ids_deterministic():
    def ids():
        with FakeCloud() as c:
            a = c.add_iot_device("HS103(US)_2.1_1.1.4.json", "A")
            b = c.add_iot_device("HS103(US)_2.1_1.1.4.json", "B")
            return a.device_id, a.mac, b.device_id, b.mac
    first = ids()
    assert first == ids()
    assert first[0] != first[2] and first[1] != first[3]


# ---------------------------------------------------------------------------- passthrough
def test_passthrough_plug_on_regional_host(cloud, token):
    plug = cloud.add_iot_device("HS103(US)_2.1_1.1.4.json", "Desk Lamp")
    assert not plug.is_on()
    out = device_reply(passthrough(cloud.regional_url, token, plug.device_id,
                                   {"system": {"set_relay_state": {"state": 1}}}))
    assert out == {"system": {"set_relay_state": {"err_code": 0}}}
    assert plug.is_on() and plug.relay_state == 1
    info = device_reply(passthrough(cloud.regional_url, token, plug.device_id,
                                    {"system": {"get_sysinfo": {}}}))["system"]["get_sysinfo"]
    assert info["relay_state"] == 1 and info["on_time"] == 0 and info["err_code"] == 0
    assert info["deviceId"] == plug.device_id and info["alias"] == "Desk Lamp"
    rec = cloud.last("passthrough")
    assert rec.server == "regional" and rec.token == token
    assert rec.params["deviceId"] == plug.device_id


def test_passthrough_wrong_host_fails(cloud, token):
    plug = cloud.add_iot_device("HS103(US)_2.1_1.1.4.json", "Desk Lamp")
    r = passthrough(cloud.url, token, plug.device_id, {"system": {"set_relay_state": {"state": 1}}})
    assert r["error_code"] == -20501
    assert not plug.is_on()
    login_homed = cloud.add_iot_device("HS103(US)_2.1_1.1.4.json", "Other", region="login")
    assert passthrough(cloud.regional_url, token, login_homed.device_id,
                       {"system": {"get_sysinfo": {}}})["error_code"] == -20501
    assert passthrough(cloud.url, token, login_homed.device_id,
                       {"system": {"get_sysinfo": {}}})["error_code"] == 0


def test_passthrough_errors(cloud, token):
    plug = cloud.add_iot_device("HS103(US)_2.1_1.1.4.json", "Desk Lamp")
    off = cloud.add_iot_device("HS103(US)_2.1_1.1.4.json", "Garage", online=False)
    tapo = cloud.add_smart_device("P110(EU)_1.0_1.2.3.json", "Tapo")
    strip = cloud.add_iot_device("KP303(US)_2.0_1.0.9.json", "Strip")
    get = {"system": {"get_sysinfo": {}}}
    url = cloud.regional_url
    assert passthrough(url, token, "F" * 40, get)["error_code"] == -20501
    assert passthrough(url, token, off.device_id, get) == {
        "error_code": -20571, "msg": "Device is offline"}
    assert passthrough(url, token, tapo.device_id, get)["error_code"] == -20571
    assert passthrough(url, token, strip.child_ids[0], get)["error_code"] == -20580
    bad = call(url, "passthrough", {"deviceId": plug.device_id, "requestData": "{oops"}, token)
    assert bad["error_code"] == -10100
    assert call(url, "passthrough", {"deviceId": plug.device_id}, token)["error_code"] == -20104
    cloud.set_online(off, True)
    assert passthrough(url, token, off.device_id, get)["error_code"] == 0


def test_passthrough_response_as_object(cloud, token):
    plug = cloud.add_iot_device("HS103(US)_2.1_1.1.4.json", "Obj", response_as_object=True)
    r = passthrough(cloud.regional_url, token, plug.device_id, {"system": {"get_sysinfo": {}}})
    assert isinstance(r["result"]["responseData"], dict)
    assert r["result"]["responseData"]["system"]["get_sysinfo"]["alias"] == "Obj"


def test_strip_outlet_via_context_changes_only_that_outlet(cloud, token):
    strip = cloud.add_iot_device("KP303(US)_2.0_1.0.9.json", "Office Strip",
                                 child_aliases=["Monitor", "Printer", "Charger"])
    before = [strip.child_state(i) for i in range(3)]
    assert before == [1, 0, 0]
    ids = strip.child_ids
    assert ids == [strip.device_id + f"{i:02d}" for i in range(3)]
    req = {"context": {"child_ids": [ids[2]]}, "system": {"set_relay_state": {"state": 1}}}
    out = device_reply(passthrough(cloud.regional_url, token, strip.device_id, req))
    assert out["system"]["set_relay_state"]["err_code"] == 0
    assert [strip.child_state(i) for i in range(3)] == [1, 0, 1]
    # short form
    req = {"context": {"child_ids": ["00"]}, "system": {"set_relay_state": {"state": 0}}}
    device_reply(passthrough(cloud.regional_url, token, strip.device_id, req))
    assert [strip.is_on(i) for i in range(3)] == [False, False, True]
    info = device_reply(passthrough(cloud.regional_url, token, strip.device_id,
                                    {"system": {"get_sysinfo": {}}}))["system"]["get_sysinfo"]
    assert [c["state"] for c in info["children"]] == [0, 0, 1]
    assert [c["alias"] for c in info["children"]] == ["Monitor", "Printer", "Charger"]
    assert info["children"][2]["on_time"] == 0
    # unknown child id: -3, nothing changes
    req = {"context": {"child_ids": [strip.device_id + "09"]},
           "system": {"set_relay_state": {"state": 1}}}
    out = device_reply(passthrough(cloud.regional_url, token, strip.device_id, req))
    assert out["system"]["set_relay_state"]["err_code"] == -3
    assert [strip.child_state(i) for i in range(3)] == [0, 0, 1]
    # no context: whole strip
    device_reply(passthrough(cloud.regional_url, token, strip.device_id,
                             {"system": {"set_relay_state": {"state": 1}}}))
    assert [strip.child_state(i) for i in range(3)] == [1, 1, 1]


def test_unknown_module_and_method_via_cloud(cloud, token):
    plug = cloud.add_iot_device("HS103(US)_2.1_1.1.4.json", "Desk Lamp")
    out = device_reply(passthrough(cloud.regional_url, token, plug.device_id, {
        "emeter": {"get_realtime": {}}, "system": {"no_such": {}}}))
    assert out["emeter"] == {"err_code": -1, "err_msg": "module not support"}
    assert out["system"]["no_such"] == {"err_code": -2, "err_msg": "member not support"}


# ---------------------------------------------------------------------------- faults
def test_fail_next_cloud_error(cloud, token):
    cloud.fail_next("getDeviceList", -20003, "Server busy", times=2)
    assert call(cloud.url, "getDeviceList", token=token) == {
        "error_code": -20003, "msg": "Server busy"}
    assert call(cloud.url, "getDeviceList", token=token)["error_code"] == -20003
    assert call(cloud.url, "getDeviceList", token=token)["error_code"] == 0
    cloud.fail_next("login", -20661)
    assert call(cloud.url, "login", login_params())["error_code"] == -20661
    assert cloud.count("getDeviceList") == 3 and cloud.count("login", server="login") == 2


def test_fail_next_http_and_disconnect(cloud, token):
    cloud.fail_next_http("getDeviceList", status=502, body=b"<html>bad gateway</html>")
    r = HTTP.post(cloud.url, params={"token": token}, json={"method": "getDeviceList"})
    assert r.status_code == 502 and r.headers["content-type"] == "text/html"
    assert r.content == b"<html>bad gateway</html>"
    cloud.fail_next_http(None, status=200, body=b"not json", content_type="text/plain")
    r = HTTP.post(cloud.url, json={"method": "login", "params": login_params()})
    assert r.status_code == 200 and r.content == b"not json"
    cloud.fail_next_disconnect("getDeviceList")
    with pytest.raises(httpx.RemoteProtocolError):
        HTTP.post(cloud.url, params={"token": token}, json={"method": "getDeviceList"})
    assert call(cloud.url, "getDeviceList", token=token)["error_code"] == 0
    assert cloud.requests[-2].status is None


def test_delay_causes_timeout(cloud):
    cloud.delay = 1.0
    with pytest.raises(httpx.ReadTimeout):
        HTTP.post(cloud.url, json={"method": "login", "params": login_params()}, timeout=0.2)
    cloud.delay = 0
    assert call(cloud.url, "login", login_params())["error_code"] == 0


def test_concurrent_requests_logged(cloud, token):
    errors = []

    def worker():
        try:
            assert call(cloud.url, "getDeviceList", token=token)["error_code"] == 0
        except Exception as e:  # pragma: no cover
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and cloud.count("getDeviceList") == 8


def test_secrets_listed(cloud):
    res = login(cloud)
    s = cloud.secrets()
    assert PASSWORD in s and res["token"] in s and res["refreshToken"] in s
    cloud.assert_no_secrets("nothing secret here")
    with pytest.raises(AssertionError):
        cloud.assert_no_secrets(f"oops {res['token']}")


# ---------------------------------------------------------------------------- IOT emulator
FIXTURE_NAMES = ["HS103(US)_2.1_1.1.4.json", "HS300(US)_2.0_1.0.12.json",
                 "KP303(US)_2.0_1.0.9.json", "KL130(US)_1.0_1.8.11.json",
                 "HS220(US)_1.0_1.5.7.json", "HS110(EU)_4.0_1.0.4.json",
                 "LB100(US)_1.0_1.8.11.json", "KP115(US)_1.0_1.0.21.json"]


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_sysinfo_shape_matches_fixture(name):
    fixture = load_fixture(name)["system"]["get_sysinfo"]
    dev = IotDevice.from_fixture(name, alias="Thing", device_id="AB" * 20, mac="11:22:33:44:55:66")
    info = dev.handle({"system": {"get_sysinfo": {}}})["system"]["get_sysinfo"]
    assert set(info) == set(fixture) | {"err_code"}
    for key, value in fixture.items():
        if key not in ("alias", "deviceId", "mac", "mic_mac", "children"):
            assert info[key] == value, key
    assert info["err_code"] == 0 and info["alias"] == "Thing"
    assert info["deviceId"] == "AB" * 20
    assert (info.get("mac") or info.get("mic_mac")).replace(":", "") == "112233445566"
    assert dev.mac == "112233445566"
    for i, child in enumerate(info.get("children", [])):
        assert child["id"] == "AB" * 20 + f"{i:02d}"
        assert set(child) == set(fixture["children"][i])


def test_default_ids_are_40_hex():
    dev = IotDevice.from_fixture("HS103(US)_2.1_1.1.4.json", alias="x")
    assert len(dev.device_id) == 40 and int(dev.device_id, 16) >= 0
    assert dev.device_id == IotDevice.from_fixture("HS103(US)_2.1_1.1.4", alias="x").device_id
    assert IotDevice.from_fixture(FIXTURES_DIR / "iot" / "HS103(US)_2.1_1.1.4.json").model == \
        "HS103(US)"


def test_plug_relay_on_time_led_alias():
    dev = IotDevice.from_fixture("HS110(EU)_4.0_1.0.4.json", alias="Kettle")
    assert dev.is_on() and dev.sysinfo["on_time"] == 1484778
    r = dev.handle({"system": {"set_relay_state": {"state": 0}}})
    assert r == {"system": {"set_relay_state": {"err_code": 0}}}
    assert not dev.is_on() and dev.sysinfo["on_time"] == 0
    dev.sysinfo["on_time"] = 50
    dev.handle({"system": {"set_relay_state": {"state": 1}}})
    assert dev.is_on() and dev.sysinfo["on_time"] == 0
    assert dev.handle({"system": {"set_relay_state": {"state": 7}}})["system"][
        "set_relay_state"]["err_code"] == -3
    assert dev.handle({"system": {"set_relay_state": {}}})["system"][
        "set_relay_state"]["err_code"] == -3
    assert dev.led_off == 1
    assert dev.handle({"system": {"set_led_off": {"off": 0}}}) == {
        "system": {"set_led_off": {"err_code": 0}}}
    assert dev.led_off == 0
    dev.handle({"system": {"set_dev_alias": {"alias": "Tea"}}})
    assert dev.alias == "Tea"
    assert len(dev.requests) == 6


def test_several_modules_in_one_request():
    dev = IotDevice.from_fixture("HS110(EU)_4.0_1.0.4.json")
    fixture_rt = load_fixture("HS110(EU)_4.0_1.0.4.json")["emeter"]["get_realtime"]
    r = dev.handle({"system": {"get_sysinfo": {}, "set_led_off": {"off": 1}},
                    "emeter": {"get_realtime": {}}, "cnCloud": {"get_info": {}}})
    assert set(r) == {"system", "emeter", "cnCloud"}
    assert set(r["system"]) == {"get_sysinfo", "set_led_off"}
    assert r["emeter"]["get_realtime"] == fixture_rt
    assert r["cnCloud"] == {"err_code": -1, "err_msg": "module not support"}


def test_emeter_support_by_feature():
    for name in ("HS103(US)_2.1_1.1.4.json", "KP303(US)_2.0_1.0.9.json",
                 "HS220(US)_1.0_1.5.7.json"):
        dev = IotDevice.from_fixture(name)
        assert dev.handle({"emeter": {"get_realtime": {}}}) == {
            "emeter": {"err_code": -1, "err_msg": "module not support"}}, name
    strip = IotDevice.from_fixture("HS300(US)_2.0_1.0.12.json")
    r = strip.handle({"context": {"child_ids": [strip.child_ids[3]]},
                      "emeter": {"get_realtime": {}}})["emeter"]["get_realtime"]
    assert r["err_code"] == 0 and r["slot_id"] == 3 and r["voltage_mv"] == 120110
    bulb = IotDevice.from_fixture("KL130(US)_1.0_1.8.11.json")
    assert bulb.handle({"smartlife.iot.common.emeter": {"get_realtime": {}}}) == {
        "smartlife.iot.common.emeter": {"get_realtime": {"err_code": 0, "power_mw": 0}}}
    assert bulb.handle({"emeter": {"get_realtime": {}}})["emeter"]["err_code"] == -1
    plug = IotDevice.from_fixture("HS110(EU)_4.0_1.0.4.json")
    assert plug.handle({"smartlife.iot.common.emeter": {"get_realtime": {}}})[
        "smartlife.iot.common.emeter"]["err_code"] == -1
    plug.realtime = {"voltage": 230.1, "current": 0.1, "power": 23.0, "total": 1.5}
    assert plug.handle({"emeter": {"get_realtime": {}}})["emeter"]["get_realtime"]["power"] == 23.0


def test_bulb_light_state():
    bulb = IotDevice.from_fixture("KL130(US)_1.0_1.8.11.json", alias="Hall")
    svc = "smartlife.iot.smartbulb.lightingservice"
    assert not bulb.is_on()
    r = bulb.handle({svc: {"get_light_state": {}}})[svc]["get_light_state"]
    assert r == {"on_off": 0, "err_code": 0, "dft_on_state": {
        "brightness": 30, "color_temp": 0, "hue": 240, "mode": "normal", "saturation": 100}}
    r = bulb.handle({svc: {"transition_light_state": {"on_off": 1, "transition_period": 0}}})
    state = r[svc]["transition_light_state"]
    assert state["err_code"] == 0 and state["on_off"] == 1 and state["brightness"] == 30
    assert bulb.is_on() and bulb.relay_state == 1
    bulb.handle({svc: {"transition_light_state": {
        "brightness": 80, "hue": 120, "saturation": 50, "color_temp": 0, "ignore_default": 1}}})
    info = bulb.handle({"system": {"get_sysinfo": {}}})["system"]["get_sysinfo"]
    assert info["light_state"] == {"on_off": 1, "mode": "normal", "hue": 120, "saturation": 50,
                                   "color_temp": 0, "brightness": 80}
    bulb.handle({svc: {"transition_light_state": {"color_temp": 4000}}})
    assert bulb.light_state["color_temp"] == 4000
    assert bulb.handle({svc: {"transition_light_state": {"brightness": 101}}})[svc][
        "transition_light_state"]["err_code"] == -3
    bulb.handle({svc: {"transition_light_state": {"on_off": 0}}})
    assert not bulb.is_on()
    assert bulb.light_state == {"on_off": 0, "dft_on_state": {
        "mode": "normal", "hue": 120, "saturation": 50, "color_temp": 4000, "brightness": 80}}
    assert bulb.handle({"system": {"set_relay_state": {"state": 1}}})["system"][
        "set_relay_state"]["err_code"] == -2
    assert bulb.handle({"smartlife.iot.dimmer": {"set_brightness": {"brightness": 5}}})[
        "smartlife.iot.dimmer"]["err_code"] == -1
    bulb.handle({"smartlife.iot.common.system": {"set_dev_alias": {"alias": "Hallway"}}})
    assert bulb.alias == "Hallway"


def test_bulb_that_is_on_in_fixture():
    bulb = IotDevice.from_fixture("LB100(US)_1.0_1.8.11.json")
    assert bulb.is_on() and bulb.brightness == 50
    svc = "smartlife.iot.smartbulb.lightingservice"
    bulb.handle({svc: {"transition_light_state": {"on_off": 0}}})
    assert bulb.light_state["dft_on_state"]["brightness"] == 50


def test_dimmer():
    dim = IotDevice.from_fixture("HS220(US)_1.0_1.5.7.json", alias="Porch")
    assert dim.is_dimmer and dim.brightness == 25
    r = dim.handle({"smartlife.iot.dimmer": {"set_brightness": {"brightness": 70}}})
    assert r == {"smartlife.iot.dimmer": {"set_brightness": {"err_code": 0}}}
    assert dim.brightness == 70 and not dim.is_on()
    assert dim.handle({"system": {"get_sysinfo": {}}})["system"]["get_sysinfo"]["brightness"] == 70
    r = dim.handle({"smartlife.iot.dimmer": {"set_brightness": {"brightness": "high"}}})
    assert r["smartlife.iot.dimmer"]["set_brightness"]["err_code"] == -3
    params = dim.handle({"smartlife.iot.dimmer": {"get_dimmer_parameters": {}}})
    assert params["smartlife.iot.dimmer"]["get_dimmer_parameters"]["rampRate"] == 30
    assert dim.handle({"smartlife.iot.dimmer": {"nope": {}}})["smartlife.iot.dimmer"][
        "nope"]["err_code"] == -2
    assert dim.handle({"smartlife.iot.smartbulb.lightingservice": {"get_light_state": {}}}) == {
        "smartlife.iot.smartbulb.lightingservice": {"err_code": -1,
                                                    "err_msg": "module not support"}}
    plug = IotDevice.from_fixture("HS103(US)_2.1_1.1.4.json")
    assert plug.handle({"smartlife.iot.dimmer": {"set_brightness": {"brightness": 5}}})[
        "smartlife.iot.dimmer"]["err_code"] == -1


def test_strip_child_alias_and_set_state_helper():
    strip = IotDevice.from_fixture("HS300(US)_2.0_1.0.12.json", alias="Rack")
    assert [c["alias"] for c in strip.children][:2] == ["Rack 1", "Rack 2"]
    strip.handle({"context": {"child_ids": ["01"]}, "system": {"set_dev_alias": {"alias": "NAS"}}})
    assert strip.children[1]["alias"] == "NAS" and strip.alias == "Rack"
    strip.set_state(False)
    assert not strip.is_on() and strip.relay_state == 0
    strip.set_state(True, child_index=4)
    assert strip.is_on() and strip.is_on(4) and not strip.is_on(3)
    assert strip.handle({"context": {"child_ids": []},
                         "system": {"set_relay_state": {"state": 1}}})["system"][
        "set_relay_state"]["err_code"] == -3


def test_several_child_ids_act_on_all_or_on_the_first_as_the_firmware_does():
    kp303 = IotDevice.from_fixture("KP303(US)_2.0_1.0.9.json")
    reply = kp303.handle({"context": {"child_ids": kp303.child_ids[1:]},
                          "system": {"set_relay_state": {"state": 1}, "get_sysinfo": {}}})
    assert reply["system"]["set_relay_state"] == {"err_code": 0}
    assert [c["state"] for c in reply["system"]["get_sysinfo"]["children"]] == [1, 1, 1]  # read after the switch
    hs300 = IotDevice.from_fixture("HS300(US)_2.0_1.0.12.json")  # acts on the first only, saying err_code 0
    assert hs300.first_child_only and not kp303.first_child_only
    reply = hs300.handle({"context": {"child_ids": hs300.child_ids[2:5]}, "system": {"set_relay_state": {"state": 0}}})
    assert reply == {"system": {"set_relay_state": {"err_code": 0}}}
    assert [c["state"] for c in hs300.children] == [1, 1, 0, 1, 1, 1]
    unknown = kp303.handle({"context": {"child_ids": [kp303.child_ids[0], kp303.device_id + "07"]},
                            "system": {"set_relay_state": {"state": 0}}})
    assert unknown["system"]["set_relay_state"]["err_code"] == -3 and kp303.is_on(0)  # nothing switched
