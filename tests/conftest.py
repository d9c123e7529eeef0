"""Shared test fixtures: the fake cloud, and the CLI run as a user runs it — as a process.

``cli`` starts ``python -m tpcloud`` with its own environment: a temporary HOME and XDG
folders, ``TPCLOUD_CLOUD_URL`` at the fake cloud, no OS keyring (so the file store is used),
stdin not a TTY. Nothing from the developer's own environment leaks in.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest_plugins = ["tests.doubles.cloud.pytest_fixtures", "tests.doubles.home"]

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
USERNAME = "user@example.com"
PASSWORD = "hunter2-Secret!"


def protocol_vectors() -> dict:
    """The independent wire vectors (tests/fixtures/protocol-vectors.json) that both tpcloud's
    codecs and the emulators' crypto must reproduce exactly."""
    return json.loads((FIXTURES / "protocol-vectors.json").read_text())


def one_line(text: str) -> str:
    """TEXT, which must be exactly one non-blank line (how every tpcloud error is printed)."""
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got: {text!r}"
    return lines[0]


def all_at_once(scripts: list[list[str]], env: dict, go: Path) -> None:
    """Run each of SCRIPTS (``python -c`` and its arguments; each waits until GO exists) at the same
    moment, and check that every one succeeded."""
    procs = [subprocess.Popen([sys.executable, "-c", *script], env=env, stderr=subprocess.PIPE) for script in scripts]
    time.sleep(1)  # let them all import and wait at the start line
    go.touch()
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()


@dataclass
class Result:
    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@dataclass
class Record:
    """What one run of tpcloud loaded: modules, TLS contexts made, CA-loading calls on them."""

    modules: set[str]
    tls_contexts: int
    ca_loads: list[str]

    def has(self, package: str) -> bool:
        return any(m == package or m.startswith(package + ".") for m in self.modules)


# Runs tpcloud as `python -m tpcloud ARGS` would, counting every ssl.SSLContext made and every
# call that loads CA certificates into one, then writes the record to the file in argv[1].
_RECORDING_WRAPPER = """
import json, runpy, ssl, sys
record = {"tls_contexts": 0, "ca_loads": []}
_new = ssl.SSLContext.__new__
def _counted(cls, *args, **kwargs):
    record["tls_contexts"] += 1
    return _new(cls, *args, **kwargs)
ssl.SSLContext.__new__ = _counted
for _name in ("load_verify_locations", "load_default_certs", "set_default_verify_paths"):
    def _loads(self, *args, _original=getattr(ssl.SSLContext, _name), _name=_name, **kwargs):
        record["ca_loads"].append(_name)
        return _original(self, *args, **kwargs)
    setattr(ssl.SSLContext, _name, _loads)
def _exit(status):  # tpcloud ends with os._exit; the record is written first
    raise SystemExit(status)
import os
os._exit = _exit
listing, sys.argv = sys.argv[1], ["tpcloud", *sys.argv[2:]]
code = 0
try:
    runpy.run_module("tpcloud", run_name="__main__")
except SystemExit as exc:
    code = exc.code
record["modules"] = sorted(sys.modules)
open(listing, "w").write(json.dumps(record))
sys.exit(code)
"""


class Cli:
    """Runs tpcloud as a subprocess in a private home."""

    def __init__(self, home: Path, cloud_url: str) -> None:
        self.home = home
        self.config_dir = home / "config" / "tpcloud"
        self.cache_dir = home / "cache" / "tpcloud"
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / "config"),
            "XDG_CACHE_HOME": str(home / "cache"),
            "LANG": "C.UTF-8",
            "TPCLOUD_CLOUD_URL": cloud_url,
            # The V2 login never reaches the real cloud from a test: nothing listens on port 9.
            "TPCLOUD_CLOUD_V2_URL": "http://127.0.0.1:9",
            # No OS keyring here, as on a headless box, in cron, or in Termux.
            "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
            # Discovery never leaves loopback in tests; nothing listens on 127.0.0.1:9999/20002.
            "TPCLOUD_DISCOVERY_TARGET": "127.0.0.1",
            "PYTHONPATH": str(ROOT),
        }

    def __call__(self, *args: str, input: str | None = None, env: dict | None = None, timeout: float = 60) -> Result:
        run_env = {**self.env, **(env or {})}
        run_env = {k: v for k, v in run_env.items() if v is not None}
        proc = subprocess.run(
            [sys.executable, "-m", "tpcloud", *args],
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=run_env,
            timeout=timeout,
            cwd=self.home,
        )
        return Result(args, proc.returncode, proc.stdout, proc.stderr)

    def loaded_modules(self, *args: str, env: dict | None = None) -> tuple[Result, set[str]]:
        """Run tpcloud in-process under a wrapper and return which modules it imported."""
        result, record = self.recorded(*args, env=env)
        return result, record.modules

    def recorded(self, *args: str, env: dict | None = None) -> tuple[Result, "Record"]:
        """Run tpcloud in-process under a wrapper that records the modules it imported and the
        TLS contexts it made (and the CA certificates those loaded)."""
        listing = self.home / "record.json"
        proc = subprocess.run(
            [sys.executable, "-c", _RECORDING_WRAPPER, str(listing), *args], stdin=subprocess.DEVNULL,
            capture_output=True, text=True, env={**self.env, **(env or {})}, timeout=60, cwd=self.home,
        )
        record = json.loads(listing.read_text())
        return Result(args, proc.returncode, proc.stdout, proc.stderr), Record(
            set(record["modules"]), record["tls_contexts"], record["ca_loads"]
        )

    def login(self, *extra: str, password: str = PASSWORD, env: dict | None = None) -> Result:
        result = self("login", "--username", USERNAME, "--password-stdin", *extra, input=password + "\n", env=env)
        assert result.code == 0, result
        return result

    def files(self) -> dict[Path, bytes]:
        """Every file tpcloud left in the private home."""
        return {p: p.read_bytes() for p in self.home.rglob("*") if p.is_file()}


def cli_of(tmp_path: Path, cloud_url: str) -> Cli:
    """A user in a fresh home (TMP_PATH/home) whose V1 calls go to CLOUD_URL."""
    home = tmp_path / "home"
    home.mkdir()
    return Cli(home, cloud_url)


def v2_cli(tmp_path: Path, cloud, v2) -> Cli:
    """A user in a fresh home whose V1 calls go to CLOUD and V2 calls to the fake V2 cloud V2."""
    cli = cli_of(tmp_path, cloud.url)
    cli.env["TPCLOUD_CLOUD_V2_URL"] = v2.url
    return cli


@pytest.fixture
def cli(tmp_path, fake_cloud) -> Cli:
    return cli_of(tmp_path, fake_cloud.url)


@pytest.fixture
def account(cli, populated_cloud) -> Cli:
    """A logged-in user of the populated account."""
    cli.login()
    return cli
