"""`make bench`: what a tpcloud command costs, against the test emulators and fake cloud on loopback.

Each scenario runs as a user runs it, a new process each time, and is measured from outside: wall
time, the child's peak RSS (GNU time) and the requests the emulators and the fake cloud
received for it. The floor is the same interpreter doing nothing (``python -c pass``); python-kasa's
``kasa`` command, from this bench's own venv, switches the same emulated devices (with the
account's credentials for KLAP and AES). Every server binds on 127.0.0.0/8 only and answers each
request after an injected latency, as a network would.

The parts: every route with the store tpcloud picks on a machine without an OS keyring (the file
store); the cloud route over TLS, as the real cloud is reached; the same routes with GNOME Keyring over Secret Service as the store (a private D-Bus
session); a few of them again on one CPU shared with a busy loop (a slow phone); `switch --all`,
a group and several names over a home with two strips at 400 ms latency; N devices at once (the
plot) and tab completion with all of them cached.

Prints Markdown tables of medians and the issue's targets, writes bench/results.json and, with
matplotlib, bench/latest.png (wall time against the number of devices switched at once).
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.doubles.wires import AesServer, DiscoveryResponder, KlapServer, XorServer, pick_loopback_host  # noqa: E402
from tests.doubles.cloud.v1 import FakeCloud  # noqa: E402
from tests.doubles.devices.smart import SmartDevice  # noqa: E402

USERNAME, PASSWORD = "bench@example.com", "bench-Password-1"
PLUG = "HS103(US)_2.1_1.1.4.json"
STRIP = "KP303(US)_2.0_1.0.9.json"
TIME = "/usr/bin/time"  # GNU time (Debian package "time"), for each child's peak RSS


def delayed(call: Callable, seconds: float) -> Callable:
    """CALL, answering only after SECONDS: the injected network latency."""

    @functools.wraps(call)
    def wrapper(*args, **kwargs):
        time.sleep(seconds)
        return call(*args, **kwargs)

    return wrapper


@dataclass
class Run:
    wall: float
    cpu: float
    rss_kb: int
    requests: dict[str, int]


@dataclass
class Home:
    """A fake cloud account whose devices also sit on the emulated LAN, and a private tpcloud home."""

    stack: ExitStack
    latency: float
    tpcloud: str
    folder: Path
    cloud: FakeCloud = field(init=False)
    servers: dict = field(default_factory=dict)

    # The store is left to tpcloud's own choice (TPCLOUD_SECRET_STORE unset), as for most users:
    # the file store where no OS keyring answers (as here, with no D-Bus session), the OS
    # keyring where EXTRA_ENV gives it one.
    extra_env: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.cloud = self.stack.enter_context(FakeCloud(USERNAME, PASSWORD))
        self.cloud.delay = self.latency
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.folder), "LANG": "C.UTF-8",
            "XDG_CONFIG_HOME": str(self.folder / "config"), "XDG_CACHE_HOME": str(self.folder / "cache"),
            "TPCLOUD_CLOUD_URL": self.cloud.url, "TPCLOUD_DISCOVERY_TARGET": "127.0.0.1", **self.extra_env,
        }

    def add_xor(self, alias: str, fixture: str = PLUG) -> None:
        device = self.cloud.add_iot_device(fixture, alias)
        device.handle = delayed(device.handle, self.latency)
        host = pick_loopback_host(udp_ports=(9999, 20002), tcp_ports=(9999,))
        self._serve(alias, XorServer(device, host, 9999))

    def add_tapo(self, alias: str, fixture: str, mac: str, server_cls: type, **device_options) -> None:
        self.cloud.add_smart_device(fixture, alias, mac=mac)
        device = SmartDevice.from_fixture(fixture, nickname=alias, mac=mac, **device_options)
        server = server_cls(device, pick_loopback_host(udp_ports=(20002,)), username=USERNAME, password=PASSWORD)
        server._handle_http = delayed(server._handle_http, self.latency)
        self._serve(alias, server)

    def _serve(self, alias: str, server) -> None:
        self.servers[alias] = self.stack.enter_context(server)
        self.stack.enter_context(DiscoveryResponder.for_server(server))

    def sign_in(self) -> None:
        """Log in, cache the device list, learn every LAN address: the warm state of a daily user."""
        targets = ",".join(s.host for s in self.servers.values())
        # The list comes last, once every address is known, so that it reads the strips' outlets.
        for args, stdin in ((("login", "-u", USERNAME, "--password-stdin"), PASSWORD + "\n"),
                            (("discover", "--timeout", "2", "--target", targets), None), (("list", "--refresh"), None)):
            subprocess.run([self.tpcloud, *args], input=stdin, env=self.env, check=True, capture_output=True, text=True)

    def counts(self) -> dict[str, int]:
        """Requests received so far: XOR frames, HTTP requests to devices (also each device's
        own, as "device:NAME"), and cloud calls."""
        counted = {"device": 0, "cloud": self.cloud.count(), "getDeviceList": self.cloud.count("getDeviceList")}
        for alias, server in self.servers.items():
            counted[f"device:{alias}"] = server.request_count if isinstance(server, XorServer) else server.http_count
            counted["device"] += counted[f"device:{alias}"]
        return counted


def run_at_once(commands: list[list[str]], env: dict[str, str], counts: Callable[[], dict[str, int]]) -> Run:
    """Start COMMANDS together and wait for all: wall time, the largest peak RSS, requests served.

    Each command runs under GNU time, which reports its peak RSS: Linux counts the memory a child
    had before exec in its own peak, so a child forked straight from this (larger) process would
    report this process's size.
    """
    before = counts()
    with tempfile.TemporaryDirectory() as folder, tempfile.TemporaryFile() as errors:
        reports = [Path(folder) / str(i) for i in range(len(commands))]
        started = time.perf_counter()
        procs = [subprocess.Popen([TIME, "-f", "%M %U %S", "-o", str(report), *command], env=env,
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errors)
                 for command, report in zip(commands, reports)]
        for proc in procs:
            proc.wait()
        wall = time.perf_counter() - started
        failed = [p for p in procs if p.returncode != 0]
        if failed:
            errors.seek(0)
            raise SystemExit(f"bench: {failed[0].args} exited {failed[0].returncode}: {errors.read().decode()[-2000:]}")
        figures = [report.read_text().split()[-3:] for report in reports]
    after = counts()
    return Run(wall, sum(float(user) + float(system) for _, user, system in figures),
               max(int(rss) for rss, _, _ in figures), {k: after[k] - before[k] for k in after})


@dataclass
class Scenario:
    name: str
    argv: list[str]
    prepare: Callable[[], None] = lambda: None  # untimed, before each run
    env: dict = field(default_factory=dict)  # on top of the home's


def measure(scenarios: list[Scenario], home: Home, runs: int, prefix: tuple[str, ...] = ()) -> list[dict]:
    """Every scenario once per round, so load from elsewhere on the machine falls on all alike.

    Round 0 is an untimed warm-up (page cache, a first saved session). PREFIX goes before each
    command (taskset, for the slow-CPU runs).
    """
    results: dict[str, list[Run]] = {s.name: [] for s in scenarios}
    for round_number in range(runs + 1):
        for scenario in scenarios:
            scenario.prepare()
            run = run_at_once([[*prefix, *scenario.argv]], {**home.env, **scenario.env}, home.counts)
            if round_number:
                results[scenario.name].append(run)
    return [{
        "name": s.name,
        "command": " ".join(s.argv),
        "wall_s": statistics.median(r.wall for r in results[s.name]),
        "wall_s_runs": [round(r.wall, 4) for r in results[s.name]],
        "cpu_s": statistics.median(r.cpu for r in results[s.name]),
        "peak_rss_kb": int(statistics.median(r.rss_kb for r in results[s.name])),
        "requests": {k: int(statistics.median(r.requests[k] for r in results[s.name])) for k in results[s.name][0].requests},
    } for s in scenarios]


def forget_session(python: str, env: dict[str, str], wire: str, server) -> Callable[[], None]:
    """Drop one device's saved session through tpcloud's own store, so the next run handshakes."""
    code = ("import os, sys; from tpcloud.lan.sessions import SessionStore; from tpcloud.redact import Redactor; "
            "from tpcloud.config import Settings; from tpcloud.secrets import SecretStore; "
            "SessionStore(SecretStore(Settings.from_env(os.environ)), Redactor()).save({sys.argv[1]: None})")
    argv = [python, "-c", code, f"{wire} {server.host}:{server.port}"]
    return lambda: subprocess.run(argv, env=env, check=True)


# The routes the issue sets targets for, and the kasa command on the same device.
XOR, CLOUD, KLAP, AES = ("switch, XOR, warm cache", "switch, cloud, warm cache", "switch, KLAP, saved session",
                         "switch, AES, saved session")
KASA = {XOR: "kasa --host H on (XOR)", CLOUD: "kasa --host H on (XOR)", KLAP: "kasa --host H on (KLAP, credentials)",
        AES: "kasa --host H on (AES, credentials)"}
CLOUD_TLS = "switch, cloud over TLS (V2 API), warm cache"
KEYRING = " · OS keyring"
SLOW = " · slow CPU"


def one_home(args: argparse.Namespace, stack: ExitStack, folder: Path, extra_env: dict | None = None) -> Home:
    """An XOR lamp, a KLAP plug and an AES plug, signed in, at the single-device latency."""
    home = Home(stack, args.latency, args.tpcloud, folder, extra_env=extra_env or {})
    home.add_xor("Desk Lamp")
    home.add_tapo("Living Room", "P110(EU)_1.0_1.2.3.json", "A842A1000001", KlapServer)
    home.add_tapo("Bedroom", "P100(US)_1.0.0_1.4.0.json", "A842A1000002", AesServer)
    home.sign_in()
    return home


def tpcloud_scenarios(args: argparse.Namespace, home: Home, suffix: str = "") -> list[Scenario]:
    tp = args.tpcloud
    forget_klap = forget_session(args.python, home.env, "klap", home.servers["Living Room"])
    forget_aes = forget_session(args.python, home.env, "aes", home.servers["Bedroom"])
    return [
        Scenario(XOR + suffix, [tp, "switch", "Desk Lamp", "on"]),
        Scenario(CLOUD + suffix, [tp, "switch", "Desk Lamp", "on", "--via", "cloud"]),
        Scenario(KLAP + suffix, [tp, "switch", "Living Room", "on"]),
        Scenario("switch, KLAP, no saved session" + suffix, [tp, "switch", "Living Room", "on"], forget_klap),
        Scenario(AES + suffix, [tp, "switch", "Bedroom", "on"]),
        Scenario("switch, AES, no saved session" + suffix, [tp, "switch", "Bedroom", "on"], forget_aes),
    ]


def kasa_scenarios(args: argparse.Namespace, home: Home) -> list[Scenario]:
    def kasa(name: str, *options: str) -> list[str]:
        return [args.kasa, "--host", home.servers[name].host, *options, "on"]

    credentials = ("--username", USERNAME, "--password", PASSWORD)
    return [
        Scenario("kasa --host H --type plug on (XOR)", kasa("Desk Lamp", "--type", "plug")),
        Scenario(KASA[XOR], kasa("Desk Lamp")),
        Scenario(KASA[KLAP], kasa("Living Room", *credentials)),
        Scenario(KASA[AES], kasa("Bedroom", *credentials)),
    ]


def single_device(args: argparse.Namespace, stack: ExitStack, folder: Path) -> list[dict]:
    home = one_home(args, stack, folder)
    floor = [Scenario("python -c pass (floor)", [args.python, "-c", "pass"]),
             Scenario("tpcloud --help", [args.tpcloud, "--help"])]
    return measure([*floor, *tpcloud_scenarios(args, home), *kasa_scenarios(args, home)], home, args.runs)


def tls_cloud(args: argparse.Namespace, stack: ExitStack, folder: Path) -> list[dict]:
    """The cloud route as the real cloud is reached: over TLS. The fake cloud's signed V2 API
    serves a certificate from a test CA that tpcloud is told to trust besides its own (the
    system's CA directory, or certifi's bundle), so the command pays what a user's does: the TLS
    context, the handshake, and one CA looked up. No target: what TLS adds to the cloud route."""
    from tests.doubles.cloud.v2 import FakeCloudV2, loopback_tls

    (folder / "ca").mkdir(parents=True)
    server_tls, ca_file = loopback_tls(folder / "ca")
    home = Home(stack, args.latency, args.tpcloud, folder, extra_env={"TPCLOUD_CLOUD_V2_CA_FILE": str(ca_file)})
    v2 = stack.enter_context(FakeCloudV2(home.cloud, tls=server_tls))
    v2.answer = delayed(v2.answer, args.latency)  # the V1 cloud's delay is in its own HTTP plumbing
    home.env["TPCLOUD_CLOUD_V2_URL"] = v2.url
    v1_counts = home.counts
    home.counts = lambda: {**v1_counts(), "cloud": len(v2.requests)}  # type: ignore[method-assign]
    home.add_xor("Desk Lamp")
    for argv, stdin in ((("login", "-u", USERNAME, "--password-stdin", "--api", "v2"), PASSWORD + "\n"), (("list",), None)):
        subprocess.run([args.tpcloud, *argv], input=stdin, env=home.env, check=True, capture_output=True, text=True)
    return measure([Scenario(CLOUD_TLS, [args.tpcloud, "switch", "Desk Lamp", "on", "--via", "cloud"])], home, args.runs)


def slow_cpu(args: argparse.Namespace, stack: ExitStack, folder: Path) -> list[dict]:
    """The same commands on one CPU that a busy loop also wants: roughly half a core, as a phone
    in power-saving mode gives. The emulators and this script stay on the other CPUs."""
    home = one_home(args, stack, folder)
    chosen = [s for s in tpcloud_scenarios(args, home) if s.name in (XOR, CLOUD, KLAP, AES)]
    chosen += [s for s in kasa_scenarios(args, home) if s.name in (KASA[XOR], KASA[KLAP])]
    for scenario in chosen:
        scenario.name += SLOW
    cpu = str(args.slow_cpu)
    busy = subprocess.Popen(["taskset", "-c", cpu, sys.executable, "-c", "while True: pass"])
    try:
        return measure(chosen, home, args.runs, prefix=("taskset", "-c", cpu))
    finally:
        busy.kill()
        busy.wait()


def keyring_store(args: argparse.Namespace, stack: ExitStack, folder: Path) -> list[dict]:
    """The tpcloud routes again, with GNOME Keyring (over Secret Service, in a private D-Bus
    session) as the store: chosen at login, as on a desktop."""
    from tests.secret_service import SecretService, missing

    if missing():
        raise SystemExit(f"bench: the OS keyring part needs {', '.join(missing())} (Debian: apt-get install "
                         "gnome-keyring dbus-daemon), or --skip keyring")
    service = SecretService().start()
    stack.callback(service.stop)
    home = one_home(args, stack, folder, extra_env=service.env)
    return measure(tpcloud_scenarios(args, home, KEYRING), home, args.runs)


def strips(args: argparse.Namespace, stack: ExitStack, folder: Path) -> list[dict]:
    """`switch --all`, a group and several names over a home with a KP303 (XOR) and a P300
    (KLAP) strip besides plugs, every device answering LATENCY late, against one XOR plug.

    Not an HS300: the 2.0 hardware switches only the first outlet a request names (so tpcloud
    sends the others alone: 6 requests for 6 outlets), see docs/many-devices.md."""
    home = Home(stack, args.strip_latency, args.tpcloud, folder)
    home.add_xor("Desk Lamp")
    home.add_xor("Office Strip", STRIP)
    home.add_tapo("Living Room", "P110(EU)_1.0_1.2.3.json", "A842A1000001", KlapServer)
    home.add_tapo("Bedroom", "P100(US)_1.0.0_1.4.0.json", "A842A1000002", AesServer)
    home.add_tapo("Power Strip", "P300(EU)_1.0_1.0.15.json", "A842A1000003", KlapServer,
                  child_nicknames=["Fan", "Radio", "Heater"])
    home.sign_in()
    listed = subprocess.run([args.tpcloud, "list", "--json"], env=home.env, check=True, capture_output=True, text=True)
    outlets = [f"{d['name']}/{o['name']}" for d in json.loads(listed.stdout) for o in d["outlets"]]
    config = Path(home.env["XDG_CONFIG_HOME"]) / "tpcloud"
    config.mkdir(parents=True, exist_ok=True)
    (config / "config.toml").write_text("[groups]\nevening = " + json.dumps(outlets) + "\n")
    tp = args.tpcloud
    return measure([
        Scenario("one XOR plug", [tp, "switch", "Desk Lamp", "off"]),
        Scenario("switch --all", [tp, "switch", "--all", "off"]),
        Scenario("a group: every outlet of both strips", [tp, "switch", "evening", "on"]),
        Scenario("several names: both strips' outlets", [tp, "switch", *outlets, "off"]),
    ], home, args.fanout_runs)


def many_devices(args: argparse.Namespace, stack: ExitStack, folder: Path) -> dict:
    """N devices switched at once: by one `tpcloud switch` naming all N, and by N `kasa` processes
    (kasa switches one device per command). Then tab completion of a name with all of them cached."""
    home = Home(stack, args.fanout_latency, args.tpcloud, folder)
    names = [f"Plug {i:02d}" for i in range(max(args.devices))]
    for name in names:
        home.add_xor(name)
    home.sign_in()
    figures: dict[str, list] = {"devices": args.devices, "tpcloud_wall_s": [], "kasa_wall_s": [], "requests": []}
    for n in args.devices:
        chosen = names[:n]
        tp = [[args.tpcloud, "switch", *chosen, "on"]]
        kasa = [[args.kasa, "--host", home.servers[name].host, "--type", "plug", "on"] for name in chosen]
        runs = [run_at_once(tp, home.env, home.counts) for _ in range(args.fanout_runs)]
        figures["tpcloud_wall_s"].append(statistics.median(r.wall for r in runs))
        figures["requests"].append({k: v for k, v in runs[-1].requests.items() if not k.startswith("device:")})
        figures["kasa_wall_s"].append(statistics.median(run_at_once(kasa, home.env, home.counts).wall
                                                        for _ in range(args.fanout_runs)))
    completing = {"_TPCLOUD_COMPLETE": "complete_bash", "COMP_WORDS": "tpcloud\nswitch\nPlug 1", "COMP_CWORD": "2"}
    [completion] = measure([Scenario(f"tab completion, {len(names)} devices cached", [args.tpcloud], env=completing)],
                           home, args.runs)
    figures["completion"] = completion
    return figures


def targets(rows: dict[str, dict], fanout: dict | None, strip_rows: dict[str, dict] | None) -> list[dict]:
    """The issue's targets, each with the measured figure and whether it is met."""
    checks = []
    xor = rows[XOR]["wall_s"]
    for suffix in ("", KEYRING):
        for route in (XOR, CLOUD, KLAP, AES):
            if route + suffix not in rows:
                continue
            wall = rows[route + suffix]["wall_s"]
            checks.append((f"{route}{suffix} / {KASA[route]}", wall / rows[KASA[route]]["wall_s"], "<=", 0.3))
            if route != XOR or suffix:
                checks.append((f"{route}{suffix} / tpcloud's XOR warm switch", wall / xor, "<=", 1.5))
    checks += [
        ("cloud warm switch: cloud requests", rows[CLOUD]["requests"]["cloud"], "==", 1),
        ("cloud warm switch: getDeviceList", rows[CLOUD]["requests"]["getDeviceList"], "==", 0),
        ("KLAP, saved session: device requests", rows[KLAP]["requests"]["device"], "==", 1),
        ("AES, saved session: device requests", rows[AES]["requests"]["device"], "==", 1),
        ("XOR warm switch peak RSS / kasa's", rows[XOR]["peak_rss_kb"] / rows[KASA[XOR]]["peak_rss_kb"], "<", 1),
    ]
    if strip_rows:
        one = strip_rows["one XOR plug"]["wall_s"]
        for name, row in strip_rows.items():
            if name != "one XOR plug":
                checks.append((f"{name} / one XOR plug", row["wall_s"] / one, "<=", 2))
                most = max(v for k, v in row["requests"].items() if k.startswith("device:"))
                checks.append((f"{name}: most requests to one device", most, "==", 1))
    if fanout:
        checks.append((fanout["completion"]["name"] + " (s)", fanout["completion"]["wall_s"], "<=", 0.15))
        if len(fanout["devices"]) > 1:
            ratio = fanout["tpcloud_wall_s"][-1] / fanout["tpcloud_wall_s"][0]
            checks.append((f"{fanout['devices'][-1]} devices at once / one device (one tpcloud command)", ratio, "<=", 2))
    compare = {"<=": lambda a, b: a <= b, "<": lambda a, b: a < b, "==": lambda a, b: a == b}
    return [{"target": f"{name} {op} {limit}", "measured": round(value, 3), "met": compare[op](value, limit)}
            for name, value, op, limit in checks]


def table(rows: list[dict], latency: float, kasa: dict[str, dict] | None = None) -> str:
    """Markdown: each scenario's medians, and (with KASA, the rows by name) its time against kasa
    on the same device, where there is a kasa row for its route."""
    def versus_kasa(name: str) -> str:
        route = name.removesuffix(KEYRING).removesuffix(SLOW)
        other = KASA.get(route) and (KASA[route] + (SLOW if name.endswith(SLOW) else ""))
        return f"{rows_by_name[name]['wall_s'] / kasa[other]['wall_s']:.2f}" if kasa and other in kasa else ""

    rows_by_name = {r["name"]: r for r in rows}
    lines = [f"| scenario (latency {latency * 1000:g} ms per request) | wall (median) | ÷ kasa, same device | CPU | "
             "peak RSS | device requests | cloud requests |", "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        req = r["requests"]
        lines.append(f"| {r['name']} | {r['wall_s'] * 1000:.0f} ms | {versus_kasa(r['name'])} | "
                     f"{r['cpu_s'] * 1000:.0f} ms | {r['peak_rss_kb'] / 1024:.1f} MiB | {req['device']} | {req['cloud']} |")
    return "\n".join(lines)


def plot(fanout: dict, latency: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=100)
    ax.plot(fanout["devices"], fanout["tpcloud_wall_s"], "o-", label="tpcloud switch NAME... on (one process)")
    ax.plot(fanout["devices"], fanout["kasa_wall_s"], "s--", label="kasa --type plug on (one process per device)")
    ax.set_xscale("log", base=2)
    ax.set_xticks(fanout["devices"], [str(n) for n in fanout["devices"]])
    ax.set_xlabel("devices switched at once (XOR emulators)")
    ax.set_ylabel("wall time, median (s)")
    ax.set_title(f"{latency * 1000:g} ms latency per request, {os.cpu_count()} CPUs", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tpcloud", required=True, help="the tpcloud command to measure")
    parser.add_argument("--python", required=True, help="the interpreter tpcloud runs on (the floor)")
    parser.add_argument("--kasa", default=str(Path(sys.executable).with_name("kasa")))
    parser.add_argument("--runs", type=int, default=7, help="measured runs per scenario")
    parser.add_argument("--latency", type=float, default=0.01, help="seconds added to every request")
    parser.add_argument("--devices", type=lambda s: [int(n) for n in s.split(",") if n], default=[1, 4, 16, 64],
                        help="device counts for the at-once plot (empty: skip it)")
    parser.add_argument("--fanout-latency", type=float, default=0.1)
    parser.add_argument("--fanout-runs", type=int, default=3)
    parser.add_argument("--strip-latency", type=float, default=0.4, help="device latency of the strips scenarios")
    parser.add_argument("--slow-cpu", type=int, default=0, help="the CPU the slow-CPU runs share with a busy loop")
    parser.add_argument("--skip", default="", help="comma-separated parts to leave out: tls,keyring,slow,strips")
    parser.add_argument("--out", type=Path, default=ROOT / "bench")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    for tool, why in ((TIME, "GNU time (Debian: apt-get install time)"),
                      ("/usr/bin/taskset", "taskset (Debian: util-linux), or --skip slow")):
        if not os.access(tool, os.X_OK) and not (tool.endswith("taskset") and "slow" in skip):
            raise SystemExit(f"bench: needs {why}")
    parts = [("one", single_device), ("tls", tls_cloud), ("keyring", keyring_store), ("slow", slow_cpu)]
    rows: list[dict] = []
    strip_rows = fanout = None
    with tempfile.TemporaryDirectory(prefix="tpcloud-bench-") as tmp:
        for name, part in parts:
            if name not in skip:
                with ExitStack() as stack:
                    rows += part(args, stack, Path(tmp) / name)
        if "strips" not in skip:
            with ExitStack() as stack:
                strip_rows = strips(args, stack, Path(tmp) / "strips")
        if args.devices:
            with ExitStack() as stack:
                fanout = many_devices(args, stack, Path(tmp) / "many")
    by_name = {r["name"]: r for r in rows}
    results = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": {"arch": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version(),
                    "system": f"{platform.system()} {platform.release()}"},
        "latency_s": args.latency, "runs": args.runs, "scenarios": rows, "strips": strip_rows, "fanout": fanout,
        "fanout_latency_s": args.fanout_latency, "strip_latency_s": args.strip_latency,
        "targets": targets(by_name, fanout, strip_rows and {r["name"]: r for r in strip_rows}),
    }
    machine = results["machine"]
    print(f"{results['date']} · {machine['arch']} · {machine['cpus']} CPUs · Python {machine['python']} · "
          f"median of {args.runs} runs\n")
    print(table(rows, args.latency, by_name) + "\n")
    if strip_rows:
        print(table(strip_rows, args.strip_latency) + "\n")
    for t in results["targets"]:
        print(f"{'met   ' if t['met'] else 'MISSED'} {t['target']}: measured {t['measured']}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    if fanout:
        plot(fanout, args.fanout_latency, args.out / "latest.png")
        print("\n| devices at once | " + " | ".join(map(str, fanout["devices"])) + " |\n|---|"
              + "---:|" * len(fanout["devices"]))
        for who in ("tpcloud", "kasa"):
            print(f"| {who} | " + " | ".join(f"{s * 1000:.0f} ms" for s in fanout[f"{who}_wall_s"]) + " |")


if __name__ == "__main__":
    main()
