"""Many tpcloud jobs at the same minute, as cron starts them: one renewal, nothing corrupted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tpcloud.fsutil import FileLock

JOBS = 20


def start(cli, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tpcloud", *args],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=cli.env, cwd=cli.home,
    )


def finish(procs: list[subprocess.Popen]) -> list[tuple[int, str, str]]:
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        results.append((proc.returncode, out, err))
    return results


def test_jobs_started_together_after_the_token_expired_renew_it_once(account, populated_cloud):
    account("list")  # a warm cache: every job goes straight to the passthrough
    populated_cloud.invalidate_used_refresh_tokens = True  # a second renewal would break the first
    populated_cloud.expire_tokens()
    populated_cloud.clear_requests()

    results = finish([start(account, "switch", "Desk Lamp", "on") for _ in range(JOBS)])

    assert [code for code, _, _ in results] == [0] * JOBS, results
    assert all(out.strip() == "Desk Lamp: on" for _, out, _ in results)
    assert populated_cloud.count("refreshToken") == 1
    assert populated_cloud.count("login") == 0
    assert account("switch", "Desk Lamp", "off").code == 0  # the stored session still works


def test_jobs_that_refresh_the_list_together_leave_a_whole_cache(account, populated_cloud):
    results = finish([start(account, "list", "--refresh", "--json") for _ in range(JOBS)])
    assert [code for code, _, _ in results] == [0] * JOBS, results
    for path in account.cache_dir.iterdir():
        if path.suffix == ".json":
            json.loads(path.read_text())  # every cache file is whole JSON
    assert not [p for p in account.cache_dir.iterdir() if p.name.endswith(".tmp")]  # no temp files left


@pytest.mark.skipif(os.name != "posix", reason="flock exists only on POSIX")
def test_a_held_lock_is_refused_without_waiting_and_free_once_released(tmp_path):
    first, second = FileLock(tmp_path / "x.lock"), FileLock(tmp_path / "x.lock")
    assert first.acquire(blocking=False)
    assert not second.acquire(blocking=False)
    first.release()
    assert second.acquire(blocking=False)
    second.release()


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts descriptors in /proc")
@pytest.mark.timeout(600)  # a thousand round trips: over a minute on a busy CI machine
def test_a_thousand_commands_in_one_process_leak_no_file_descriptors(account, populated_cloud, monkeypatch):
    from tpcloud import cli as cli_module
    from typer.testing import CliRunner

    for name, value in account.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(account.home)
    runner = CliRunner()
    app = cli_module.build()

    def run_once() -> None:
        result = runner.invoke(app, ["switch", "Desk Lamp", "toggle"])
        assert result.exit_code == 0, result.output

    def descriptors() -> int:
        return len(os.listdir("/proc/self/fd"))

    def settled(at_most: int) -> int:
        """The count, given a moment to fall to AT_MOST: the fake cloud serves from threads of this
        process, and may not have closed its end of the last connection yet."""
        deadline = time.monotonic() + 5
        while (count := descriptors()) > at_most and time.monotonic() < deadline:
            time.sleep(0.05)
        return count

    for _ in range(20):  # let lazy imports and caches settle first
        run_once()
    before = descriptors()
    # A fixed slack for what comes and goes (a connection being torn down, a thread's socket), far
    # below what a leak of even one descriptor per hundred commands would add up to.
    slack = 2
    counts = []
    for _ in range(4):
        for _ in range(250):
            run_once()
        counts.append(settled(at_most=before + slack))
    assert max(counts) <= before + slack, (before, counts)
