"""The README's recipes for unattended use, followed as written, against the fake cloud.

The files and lines come out of the README itself: the fenced block whose first comment names
a file (``# ~/bin/tpcloud-job``, ``# crontab -e``, ...) is that file. ``$HOME/tpcloud`` is a
copy of this checkout in which ``make install`` has run, so the paths in the recipes resolve as
they would for a user who cloned it there; the example home ``/home/me`` becomes the temporary
one. ``make install`` runs as written, without a package index: its venv is made beforehand, as
the Termux recipe makes it (``python -m venv --system-site-packages``), and sees the packages of
the environment running these tests, so pip (told to use no index and no build isolation) finds
every requirement already installed and only installs the copy itself. Jobs run as cron runs them:
``env -i`` with only ``HOME``, ``LOGNAME``, ``SHELL=/bin/sh`` and ``PATH=/usr/bin:/bin`` (and the
crontab's own ``NAME=value`` lines), through ``/bin/sh -c``, stdin ``/dev/null``, in ``$HOME``.
The cloud's address reaches them the way the recipes pass settings: in ``job.env``.

The Termux recipe is followed on Linux as far as Linux allows: ``$PREFIX`` is a directory whose
``bin`` holds only the tools the recipe uses (Termux puts nothing else on ``PATH``),
``termux-fix-shebang`` is applied by its rule (termux-tools: ``#!.../bin/X`` becomes
``#!$PREFIX/bin/X``), and ``termux-job-scheduler`` is tests/doubles/termux_job_scheduler.py. What
needs Android (``pkg install``, the Termux:API app, Android choosing when a job runs) is not.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.conftest import PASSWORD, ROOT, USERNAME

README = (ROOT / "README.md").read_text()
EXAMPLE_HOME = "/home/me"
STAMPED = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (\[exit \d+\] .*)$")


def recipe(name: str) -> str:
    """The README's fenced block that names ``name`` in a comment on its first or second line."""
    found = [
        body for body in re.findall(r"^```[a-z]*\n(.*?)^```$", README, re.S | re.M)
        if any(re.match(rf"# {re.escape(name)}\b", line) for line in body.splitlines()[:2])
    ]
    assert len(found) == 1, f"the README should have one block for {name}, it has {len(found)}"
    return found[0]


def section(title: str) -> str:
    start = README.index(f"## {title}\n")
    return README[start:README.index("\n## ", start + 1)]


@pytest.fixture(scope="session")
def installed_checkout(tmp_path_factory) -> Path:
    """A copy of this checkout in which ``make install`` ran, offline (see the module's docstring)."""
    clone = tmp_path_factory.mktemp("clone") / "tpcloud"
    shutil.copytree(ROOT, clone, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".venv", "__pycache__", "*.egg-info", "build", ".*_cache", ".hypothesis"))
    venv_python = clone / ".venv" / "bin" / "python"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", clone / ".venv"], check=True, timeout=120)
    site = subprocess.run([venv_python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          check=True, capture_output=True, text=True, timeout=60).stdout.strip()
    Path(site, "test-environment.pth").write_text(sysconfig.get_path("purelib") + "\n")
    offline = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(clone.parent), "LANG": "C.UTF-8",
        "PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_BUILD_ISOLATION": "off",  # pip reads this one inverted: "off" means --no-build-isolation
    }
    done = subprocess.run(["make", "install"], cwd=clone, env=offline, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done
    assert done.stdout.splitlines()[-1].startswith("tpcloud is installed: .venv/bin/tpcloud"), done
    return clone


class JobHome:
    """A user's home set up as the recipes say, and cron's way of running a job in it."""

    def __init__(self, home: Path, cloud_url: str, checkout: Path) -> None:
        self.home = home
        (home / "tpcloud").symlink_to(checkout)  # "where you cloned tpcloud and ran make install"
        self.env_file = home / ".config" / "tpcloud" / "job.env"
        self.env_file.parent.mkdir(parents=True)
        self.env_file.write_text(
            recipe("~/.config/tpcloud/job.env")
            # The test's own settings, passed the same way: the fake cloud, and discovery kept on loopback.
            + f"TPCLOUD_CLOUD_URL={cloud_url}\nTPCLOUD_DISCOVERY_TARGET=127.0.0.1\n"
        )
        wrapper = home / "bin" / "tpcloud-job"
        wrapper.parent.mkdir()
        wrapper.write_text(recipe("~/bin/tpcloud-job"))
        wrapper.chmod(0o755)
        self.log = home / "tpcloud.log"

    def cron_env(self) -> dict[str, str]:
        return {"HOME": str(self.home), "LOGNAME": os.environ.get("LOGNAME", "me"), "SHELL": "/bin/sh", "PATH": "/usr/bin:/bin"}

    def sh(self, script: str, env: dict[str, str]) -> subprocess.CompletedProcess:
        """``script`` through /bin/sh with exactly ``env``, nothing to read, and a time limit."""
        command = ["env", "-i", *(f"{k}={v}" for k, v in env.items()), "/bin/sh", "-c", script]
        return subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, cwd=self.home)

    def login(self) -> None:
        """The recipe's one-time setup, typed into a shell whose PATH has tpcloud (as ``make
        install`` asks) and which has the password in TPCLOUD_PASSWORD, since no one types it here."""
        setup = recipe_after("Log in once with these settings").replace("you@example.com", USERNAME)
        env = {**self.cron_env(), "PATH": f"{self.home}/tpcloud/.venv/bin:/usr/bin:/bin", "TPCLOUD_PASSWORD": PASSWORD}
        done = self.sh(setup, env)
        assert done.returncode == 0 and done.stdout.startswith(f"Logged in as {USERNAME}."), done

    def cron(self, crontab: str) -> list[subprocess.CompletedProcess]:
        """Each job of ``crontab``, in order, as cron runs it."""
        env, runs = self.cron_env(), []
        for line in crontab.replace(EXAMPLE_HOME, str(self.home)).splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            assignment = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", line)
            if assignment:
                env[assignment[1]] = assignment[2]
                continue
            runs.append(self.sh(line.split(None, 5)[5], env))
        return runs

    def log_lines(self) -> list[str]:
        lines = self.log.read_text().splitlines()
        assert all(STAMPED.match(line) for line in lines), lines
        return [STAMPED.match(line)[1] for line in lines]


def recipe_after(text: str) -> str:
    """The first fenced block after ``text`` in the README."""
    return re.search(rf"{re.escape(text)}.*?^```[a-z]*\n(.*?)^```$", README, re.S | re.M)[1]


@pytest.fixture
def job_home(tmp_path, populated_cloud, installed_checkout) -> JobHome:
    home = tmp_path / "home"
    home.mkdir()
    return JobHome(home, populated_cloud.url, installed_checkout)


def test_the_crontab_switches_the_devices_and_logs_each_run(job_home, populated_cloud):
    populated_cloud.by_alias["Desk Lamp"].set_state(True)
    populated_cloud.by_alias["Office Strip"].set_state(False, 0)
    job_home.login()
    runs = job_home.cron(recipe("crontab -e"))
    assert len(runs) == 2
    for run in runs:  # success prints nothing, so cron mails nothing
        assert (run.returncode, run.stdout, run.stderr) == (0, "", ""), run
    assert not populated_cloud.by_alias["Desk Lamp"].is_on()
    assert populated_cloud.by_alias["Office Strip"].is_on(0)  # its first outlet, Monitor
    # The log has what the README shows (its example lists the morning job first).
    shown = re.search(r"^\$ tail -n 2 ~/tpcloud.log\n(.*?)^```$", README, re.S | re.M)[1].splitlines()
    assert sorted(job_home.log_lines()) == sorted(STAMPED.match(line)[1] for line in shown)
    # The job used the encrypted file store, with the passphrase from job.env.
    store = json.loads((job_home.home / ".config" / "tpcloud" / "secrets.json").read_text())
    assert store["encryption"] == "scrypt+aes-256-gcm"


def test_a_job_that_needs_a_login_says_so_and_exits_3(job_home, populated_cloud):
    lamp_job = next(line for line in recipe("crontab -e").splitlines() if "Desk Lamp" in line)
    (run,) = job_home.cron(lamp_job)
    assert run.returncode == 3, run
    assert run.stdout.splitlines() == [
        'tpcloud switch Desk Lamp off: exit 3',
        "tpcloud: not logged in to the TP-Link cloud (run `tpcloud login`)",
        "log in again: (set -a; . ~/.config/tpcloud/job.env; tpcloud login)",
    ]
    assert job_home.log_lines() == ["[exit 3] tpcloud: not logged in to the TP-Link cloud (run `tpcloud login`)"]
    assert populated_cloud.count() == 0


def test_a_job_without_the_passphrase_stops_with_exit_9_and_changes_nothing(job_home):
    job_home.login()
    store = job_home.home / ".config" / "tpcloud" / "secrets.json"
    before = store.read_bytes()
    # A job that skips job.env (cron's bare environment plus the cloud's address).
    run = job_home.sh(
        f"{job_home.home}/tpcloud/.venv/bin/tpcloud switch 'Desk Lamp' off",
        {**job_home.cron_env(), "TPCLOUD_SECRET_STORE": "file", "TPCLOUD_CLOUD_URL": "http://127.0.0.1:9"},
    )
    assert run.returncode == 9 and "TPCLOUD_PASSPHRASE" in run.stderr and run.stdout == "", run
    assert store.read_bytes() == before


def test_the_files_tpcloud_writes_are_those_the_readme_lists(job_home):
    job_home.login()
    assert [run.returncode for run in job_home.cron(recipe("crontab -e"))] == [0, 0]
    listed = set(re.findall(r"`(?:[^`]*/)?([\w.-]+\.(?:json|lock|env))`", section("Where secrets and caches live")))
    written = {p.name for d in (".config/tpcloud", ".cache/tpcloud") for p in (job_home.home / d).iterdir()}
    assert {"secrets.json", "secrets.lock", "devices.json", "job.env"} <= written <= listed


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed, so the unit files cannot be verified")
def test_the_systemd_units_verify_and_the_service_runs(job_home, populated_cloud, tmp_path):
    populated_cloud.by_alias["Desk Lamp"].set_state(True)
    job_home.login()
    units = job_home.home / ".config" / "systemd" / "user"
    units.mkdir(parents=True)
    service = recipe("~/.config/systemd/user/tpcloud-lamp-off.service")
    for name, text in (("tpcloud-lamp-off.service", service), ("tpcloud-lamp-off.timer", recipe("~/.config/systemd/user/tpcloud-lamp-off.timer"))):
        (units / name).write_text(text)
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    verify = job_home.sh(
        f"systemd-analyze --user verify {units}/tpcloud-lamp-off.timer {units}/tpcloud-lamp-off.service",
        {**job_home.cron_env(), "XDG_RUNTIME_DIR": str(runtime)},
    )
    assert (verify.returncode, verify.stdout, verify.stderr) == (0, "", ""), verify  # warnings count too

    # No user manager runs here, so the service is started the way it describes: its
    # EnvironmentFile= (plain NAME=value lines, read here by sh) and Environment=, then ExecStart=.
    keys = dict(line.split("=", 1) for line in service.replace("%h", str(job_home.home)).splitlines() if "=" in line)
    name, value = keys["Environment"].split("=", 1)
    run = job_home.sh(
        f'set -a; . {keys["EnvironmentFile"]}; set +a; exec {keys["ExecStart"]}',
        {**job_home.cron_env(), name: value},
    )
    assert (run.returncode, run.stdout, run.stderr) == (0, "Desk Lamp: off\n", ""), run
    assert not populated_cloud.by_alias["Desk Lamp"].is_on()


# -- Termux ------------------------------------------------------------------------------------

TERMUX_TOOLS = ("sh", "sed", "date", "chmod", "mkdir")  # what the wrapper and the recipes' lines call


def fix_shebang(script: Path, prefix: Path) -> None:
    """termux-fix-shebang's rewrite of a first line ``#!<dir>/bin/env X`` or ``#!<dir>/[s|x]bin/X``."""
    first, _, rest = script.read_text().partition("\n")
    first = re.sub(r"^#!.*/[sx]?bin/env (.*)$", rf"#!{prefix}/bin/\1", first, count=1)
    first = re.sub(r"^#!.*/[sx]?bin/(.*)$", rf"#!{prefix}/bin/\1", first, count=1)
    script.write_text(f"{first}\n{rest}")


@pytest.fixture
def termux(job_home, tmp_path):
    """JOB_HOME inside a Termux-like $PREFIX; returns the environment Termux gives its processes."""
    prefix = tmp_path / "usr"
    (prefix / "bin").mkdir(parents=True)
    (prefix / "tmp").mkdir()
    for tool in TERMUX_TOOLS:
        (prefix / "bin" / tool).symlink_to(shutil.which(tool))
    scheduler = prefix / "bin" / "termux-job-scheduler"
    scheduler.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{ROOT}/tests/doubles/termux_job_scheduler.py" "$@"\n')
    scheduler.chmod(0o755)
    return {"HOME": str(job_home.home), "PREFIX": str(prefix), "PATH": f"{prefix}/bin", "TMPDIR": str(prefix / "tmp"), "LANG": "en_US.UTF-8"}


def test_the_termux_job_switches_the_kettle_off_when_android_runs_it(job_home, termux, populated_cloud):
    kettle = populated_cloud.by_alias["Kettle"]
    kettle.set_state(True)
    job_home.login()
    prefix = Path(termux["PREFIX"])
    wrapper = job_home.home / "bin" / "tpcloud-job"
    fix_shebang(wrapper, prefix)
    assert wrapper.read_text().startswith(f"#!{prefix}/bin/sh\n")

    scheduling = recipe_after("termux-job-scheduler` runs a")
    done = job_home.sh(scheduling, termux)
    assert done.returncode == 0 and done.stderr == "", done
    assert done.stdout == f"Pending job 1: {job_home.home}/bin/kettle-off every 3600000 ms, persisted True\n"

    # Android runs the job: the script itself, no arguments, Termux's environment, nothing on stdin.
    jobs = json.loads((prefix / "var" / "termux-jobs.json").read_text())
    run = subprocess.run([jobs["1"]["script"]], env=termux, cwd=job_home.home, stdin=subprocess.DEVNULL,
                         capture_output=True, text=True, timeout=60)
    assert (run.returncode, run.stdout, run.stderr) == (0, "", ""), run
    assert not kettle.is_on()
    assert job_home.log_lines() == ["[exit 0] Kettle: off"]


def test_make_install_keeps_the_venv_termux_builds_with_its_own_cryptography(tmp_path):
    clone = tmp_path / "tpcloud"
    clone.mkdir()
    shutil.copy(ROOT / "Makefile", clone / "Makefile")
    setup = recipe_after("then in Termux:").splitlines()
    venv_line = next(line for line in setup if line.startswith("python -m venv"))
    made = subprocess.run(venv_line.split("#")[0].replace("python", sys.executable, 1), shell=True, cwd=clone,
                          capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made
    assert "include-system-site-packages = true" in (clone / ".venv" / "pyvenv.cfg").read_text()
    planned = subprocess.run(["make", "-n", "install"], cwd=clone, capture_output=True, text=True, timeout=60)
    assert planned.returncode == 0, planned
    assert "-m venv" not in planned.stdout and ".venv/bin/python -m pip install -q ." in planned.stdout


def test_the_termux_shortcut_starts_a_timer_the_plug_keeps(job_home, termux, populated_cloud):
    heater = populated_cloud.add_iot_device("HS103(US)_2.1_1.1.4.json", "Heater")
    job_home.login()
    fix_shebang(job_home.home / "bin" / "tpcloud-job", Path(termux["PREFIX"]))
    made = job_home.sh(recipe_after("**A timer from Termux.**"), termux)
    assert (made.returncode, made.stdout, made.stderr) == (0, "", ""), made
    shortcut = job_home.home / ".shortcuts" / "heater-45m"
    assert shortcut.read_text().startswith(f"#!{termux['PREFIX']}/bin/sh\n")

    # Termux:Widget runs the script itself, with no arguments, in Termux's environment.
    run = subprocess.run([shortcut], env=termux, cwd=job_home.home, stdin=subprocess.DEVNULL,
                         capture_output=True, text=True, timeout=60)
    assert (run.returncode, run.stdout, run.stderr) == (0, "", ""), run
    assert heater.is_on()
    assert job_home.log_lines() == ["[exit 0] Heater: on (off in 45m 0s)"]
    heater.advance_timers(45 * 60)  # the phone may sleep now: the plug keeps the time
    assert not heater.is_on()


def test_schedules_kept_in_git_are_applied_by_cron_and_a_quiet_night_changes_nothing(job_home, populated_cloud, tmp_path):
    if not shutil.which("git"):
        pytest.skip("git is not installed")
    origin = tmp_path / "origin.git"
    work = tmp_path / "work"
    git = {"GIT_AUTHOR_NAME": "me", "GIT_AUTHOR_EMAIL": "me@example.com", "GIT_COMMITTER_NAME": "me",
           "GIT_COMMITTER_EMAIL": "me@example.com", "HOME": str(tmp_path), "PATH": os.environ["PATH"]}
    for command in (["git", "init", "-q", "--bare", "-b", "main", str(origin)], ["git", "clone", "-q", str(origin), str(work)]):
        subprocess.run(command, env=git, check=True, capture_output=True, timeout=60)
    (work / "schedules.toml").write_text(recipe("~/house/schedules.toml"))
    for command in (["git", "add", "schedules.toml"], ["git", "commit", "-qm", "schedules"], ["git", "push", "-q", "origin", "HEAD:main"]):
        subprocess.run(command, cwd=work, env=git, check=True, capture_output=True, timeout=60)
    subprocess.run(["git", "clone", "-q", str(origin), str(job_home.home / "house")], env=git, check=True, capture_output=True, timeout=60)
    job_home.login()

    crontab = recipe("crontab: schedules from git")
    (first,) = job_home.cron(crontab)
    assert (first.returncode, first.stdout, first.stderr) == (0, "", ""), first
    lamp, strip, bulb = (populated_cloud.by_alias[n] for n in ("Desk Lamp", "Office Strip", "Hall Bulb"))
    assert [(r["stime_opt"], r["soffset"], r["sact"]) for r in lamp.rules("schedule")] == [(2, -15, 1), (0, 0, 0)]
    assert [(r["smin"], r["wday"]) for r in strip.rules("schedule", child_index=1)] == [(19 * 60, [0, 1, 1, 1, 1, 1, 0])]
    assert [r["s_light"] for r in bulb.rules("schedule")] == [{"on_off": 1, "brightness": 30}]

    (second,) = job_home.cron(crontab)
    assert second.returncode == 0, second
    assert job_home.log_lines()[-3:] == [
        "[exit 0] Desk Lamp: up to date (2 rules)",
        "[exit 0] Office Strip/Printer: up to date (1 rule)",
        "[exit 0] Hall Bulb: up to date (1 rule)",
    ]


def test_the_metrics_crontab_writes_a_file_node_exporter_reads(job_home, populated_cloud):
    from prometheus_client.parser import text_string_to_metric_families

    job_home.login()
    (job_home.home / "metrics").mkdir()  # "mkdir -p ~/metrics first"
    (run,) = job_home.cron(recipe("crontab: metrics for node_exporter"))
    assert (run.returncode, run.stdout, run.stderr) == (0, "", ""), run
    written = (job_home.home / "metrics" / "tplink.prom").read_text()
    up = {s.labels["name"]: s.value for f in text_string_to_metric_families(written) if f.name == "tplink_up"
          for s in f.samples}
    assert up["Kettle"] == 1 and up["Garage"] == 0  # Garage is offline: a dead plug shows as such
    assert {"Office Strip/Monitor", "Office Strip/Printer", "Office Strip/Charger"} <= set(up)
    assert not job_home.log.exists()  # nothing printed, nothing logged


def test_the_nightly_archive_keeps_the_meters_figures_and_a_second_night_adds_nothing(job_home, populated_cloud):
    import datetime
    import sqlite3

    kettle = populated_cloud.by_alias["Kettle"]
    yesterday = datetime.date.today() - datetime.timedelta(days=1)
    kettle.record_energy(yesterday, 1500)
    job_home.login()
    crontab = recipe("crontab: nightly energy archive")
    (first,) = job_home.cron(crontab)
    # The account's Garage plug is offline: that night's mail says so (exit 6); the others are kept.
    assert first.returncode == 6 and first.stdout.startswith("tpcloud energy --all --archive: exit 6\n"), first
    assert "Garage" in first.stdout and first.stderr == ""
    archive = job_home.home / ".local" / "share" / "tpcloud" / "energy.sqlite"
    with sqlite3.connect(archive) as db:
        rows = db.execute("SELECT date, kwh FROM days WHERE device_id = ?", (kettle.device_id,)).fetchall()
    assert (yesterday.isoformat(), 1.5) in rows
    (second,) = job_home.cron(crontab)
    assert second.returncode == 6, second
    kettle_lines = [line for line in job_home.log_lines() if line.startswith("[exit 6] Kettle: ")]
    assert len(kettle_lines) == 2 and kettle_lines[1].endswith("nothing new"), kettle_lines
