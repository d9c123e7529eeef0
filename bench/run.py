"""`make bench`: what a tpcloud command costs, against the test emulators and fake cloud on loopback.

Each scenario runs as a user runs it, a new process each time, and is measured from outside: wall
time, the child's peak RSS (GNU time) and the requests the emulators and the fake cloud
received for it. The floor is the same interpreter doing nothing (``python -c pass``); python-kasa's
``kasa`` command, from this bench's own venv, switches the same XOR emulator. Every server binds on
127.0.0.0/8 only and answers each request after an injected latency, as a network would.

Prints a Markdown table of medians and the issue's targets, writes bench/results.json and, with
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

    def __post_init__(self) -> None:
        self.cloud = self.stack.enter_context(FakeCloud(USERNAME, PASSWORD))
        self.cloud.delay = self.latency
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.folder), "LANG": "C.UTF-8",
            "XDG_CONFIG_HOME": str(self.folder / "config"), "XDG_CACHE_HOME": str(self.folder / "cache"),
            "TPCLOUD_CLOUD_URL": self.cloud.url, "TPCLOUD_SECRET_STORE": "file",
            "TPCLOUD_DISCOVERY_TARGET": "127.0.0.1",
        }

    def add_xor(self, alias: str) -> None:
        device = self.cloud.add_iot_device(PLUG, alias)
        device.handle = delayed(device.handle, self.latency)
        host = pick_loopback_host(udp_ports=(9999, 20002), tcp_ports=(9999,))
        self._serve(alias, XorServer(device, host, 9999))

    def add_tapo(self, alias: str, fixture: str, mac: str, server_cls: type) -> None:
        self.cloud.add_smart_device(fixture, alias, mac=mac)
        device = SmartDevice.from_fixture(fixture, nickname=alias, mac=mac)
        server = server_cls(device, pick_loopback_host(udp_ports=(20002,)), username=USERNAME, password=PASSWORD)
        server._handle_http = delayed(server._handle_http, self.latency)
        self._serve(alias, server)

    def _serve(self, alias: str, server) -> None:
        self.servers[alias] = self.stack.enter_context(server)
        self.stack.enter_context(DiscoveryResponder.for_server(server))

    def sign_in(self) -> None:
        """Log in, cache the device list, learn every LAN address: the warm state of a daily user."""
        targets = ",".join(s.host for s in self.servers.values())
        for args, stdin in ((("login", "-u", USERNAME, "--password-stdin"), PASSWORD + "\n"), (("list",), None),
                            (("discover", "--timeout", "2", "--target", targets), None)):
            subprocess.run([self.tpcloud, *args], input=stdin, env=self.env, check=True, capture_output=True, text=True)

    def counts(self) -> dict[str, int]:
        """Requests received so far: XOR frames, HTTP requests to devices, and cloud calls."""
        counted = {"device": 0, "cloud": self.cloud.count(), "getDeviceList": self.cloud.count("getDeviceList")}
        for server in self.servers.values():
            counted["device"] += server.request_count if isinstance(server, XorServer) else server.http_count
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


def measure(scenarios: list[Scenario], home: Home, runs: int) -> list[dict]:
    """Every scenario once per round, so load from elsewhere on the machine falls on all alike.

    Round 0 is an untimed warm-up (page cache, a first saved session).
    """
    results: dict[str, list[Run]] = {s.name: [] for s in scenarios}
    for round_number in range(runs + 1):
        for scenario in scenarios:
            scenario.prepare()
            run = run_at_once([scenario.argv], home.env, home.counts)
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


def single_device(args: argparse.Namespace, stack: ExitStack, folder: Path) -> list[dict]:
    home = Home(stack, args.latency, args.tpcloud, folder)
    home.add_xor("Desk Lamp")
    home.add_tapo("Living Room", "P110(EU)_1.0_1.2.3.json", "A842A1000001", KlapServer)
    home.add_tapo("Bedroom", "P100(US)_1.0.0_1.4.0.json", "A842A1000002", AesServer)
    home.sign_in()
    lamp = home.servers["Desk Lamp"].host
    tp = args.tpcloud
    forget_klap = forget_session(args.python, home.env, "klap", home.servers["Living Room"])
    forget_aes = forget_session(args.python, home.env, "aes", home.servers["Bedroom"])
    kasa = [args.kasa, "--host", lamp]
    scenarios = [
        Scenario("python -c pass (floor)", [args.python, "-c", "pass"]),
        Scenario("tpcloud --help", [tp, "--help"]),
        Scenario("switch, XOR, warm cache", [tp, "switch", "Desk Lamp", "on"]),
        Scenario("switch, cloud, warm cache", [tp, "switch", "Desk Lamp", "on", "--via", "cloud"]),
        Scenario("switch, KLAP, saved session", [tp, "switch", "Living Room", "on"]),
        Scenario("switch, KLAP, no saved session", [tp, "switch", "Living Room", "on"], forget_klap),
        Scenario("switch, AES, saved session", [tp, "switch", "Bedroom", "on"]),
        Scenario("switch, AES, no saved session", [tp, "switch", "Bedroom", "on"], forget_aes),
        Scenario("kasa --host H --type plug on (XOR)", [*kasa, "--type", "plug", "on"]),
        Scenario("kasa --host H on (XOR, discovers first)", [*kasa, "on"]),
    ]
    return measure(scenarios, home, args.runs)


def many_devices(args: argparse.Namespace, stack: ExitStack, folder: Path) -> dict:
    """N devices switched at once: by one `tpcloud switch` naming all N, and by N `kasa` processes
    (kasa switches one device per command)."""
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
        figures["requests"].append(runs[-1].requests)
        figures["kasa_wall_s"].append(statistics.median(run_at_once(kasa, home.env, home.counts).wall
                                                        for _ in range(args.fanout_runs)))
    return figures


def targets(rows: dict[str, dict], fanout: dict | None) -> list[dict]:
    """The issue's targets, each with the measured figure and whether it is met."""
    floor, kasa = rows["python -c pass (floor)"], rows["kasa --host H --type plug on (XOR)"]
    kasa_discovering = rows["kasa --host H on (XOR, discovers first)"]
    xor, cloud = rows["switch, XOR, warm cache"], rows["switch, cloud, warm cache"]
    checks = [
        ("XOR warm switch / kasa --type plug", xor["wall_s"] / kasa["wall_s"], "<=", 0.25),
        ("XOR warm switch / kasa (discovering)", xor["wall_s"] / kasa_discovering["wall_s"], "<=", 0.25),
        ("XOR warm switch / python -c pass", xor["wall_s"] / floor["wall_s"], "<=", 8),
        ("cloud warm switch: cloud requests", cloud["requests"]["cloud"], "==", 1),
        ("cloud warm switch: getDeviceList", cloud["requests"]["getDeviceList"], "==", 0),
        ("KLAP, saved session: device requests", rows["switch, KLAP, saved session"]["requests"]["device"], "==", 1),
        ("AES, saved session: device requests", rows["switch, AES, saved session"]["requests"]["device"], "==", 1),
        ("XOR warm switch peak RSS / kasa's", xor["peak_rss_kb"] / kasa["peak_rss_kb"], "<", 1),
    ]
    if fanout and len(fanout["devices"]) > 1:
        ratio = fanout["tpcloud_wall_s"][-1] / fanout["tpcloud_wall_s"][0]
        checks.append((f"{fanout['devices'][-1]} devices at once / one device (one tpcloud command)", ratio, "<=", 2))
    compare = {"<=": lambda a, b: a <= b, "<": lambda a, b: a < b, "==": lambda a, b: a == b}
    return [{"target": f"{name} {op} {limit}", "measured": round(value, 3), "met": compare[op](value, limit)}
            for name, value, op, limit in checks]


def table(rows: list[dict], latency: float) -> str:
    floor = rows[0]["wall_s"]
    kasa = next(r for r in rows if r["name"].startswith("kasa --host H --type"))["wall_s"]
    lines = [f"| scenario (latency {latency * 1000:g} ms per request) | wall (median) | × floor | × kasa | CPU | "
             "peak RSS | device requests | cloud requests |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        req = r["requests"]
        lines.append(f"| {r['name']} | {r['wall_s'] * 1000:.0f} ms | {r['wall_s'] / floor:.1f} | "
                     f"{r['wall_s'] / kasa:.2f} | {r['cpu_s'] * 1000:.0f} ms | {r['peak_rss_kb'] / 1024:.1f} MiB | "
                     f"{req['device']} | {req['cloud']} |")
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
    parser.add_argument("--out", type=Path, default=ROOT / "bench")
    args = parser.parse_args()
    if not os.access(TIME, os.X_OK):
        raise SystemExit(f"bench: needs GNU time at {TIME} (Debian/Ubuntu: apt-get install time)")
    with tempfile.TemporaryDirectory(prefix="tpcloud-bench-") as tmp:
        with ExitStack() as stack:
            rows = single_device(args, stack, Path(tmp) / "one")
        fanout = None
        if args.devices:
            with ExitStack() as stack:
                fanout = many_devices(args, stack, Path(tmp) / "many")
    results = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": {"arch": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version(),
                    "system": f"{platform.system()} {platform.release()}"},
        "latency_s": args.latency, "runs": args.runs, "scenarios": rows, "fanout": fanout,
        "fanout_latency_s": args.fanout_latency,
    }
    results["targets"] = targets({r["name"]: r for r in rows}, fanout)
    machine = results["machine"]
    print(f"{results['date']} · {machine['arch']} · {machine['cpus']} CPUs · Python {machine['python']} · "
          f"median of {args.runs} runs\n")
    print(table(rows, args.latency) + "\n")
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
