"""A host tool, not a tpcloud layer: ``termux-job-scheduler`` as a script sees it.

It is here for following the README's Termux recipe on Linux. The real command
(termux-api-package, scripts/termux-job-scheduler) parses these options with getopt and hands
them to the Termux:API app, which registers an Android JobScheduler job that later runs the
script, without arguments, in Termux's environment. This stand-in takes the same options, keeps
the jobs in ``$PREFIX/var/termux-jobs.json`` and lists them with ``--pending``; the test then
runs each job's script as Android would. Android's own behaviour (when a job runs, the 15-minute
minimum period) is not modelled.
"""

from __future__ import annotations

import getopt
import json
import os
import sys
from pathlib import Path

# The real script's getopt specification: short "hs:p" and these long options.
LONG_OPTIONS = [
    "script=", "job-id=", "pending", "cancel", "cancel-all", "period-ms=", "network=", "battery-not-low=",
    "storage-not-low=", "charging=", "persisted=", "help", "trigger-content-flag=", "trigger-content-uri=",
]
BOOLEANS = {"true": True, "false": False}


def jobs_file() -> Path:
    return Path(os.environ["PREFIX"]) / "var" / "termux-jobs.json"


def main(argv: list[str]) -> int:
    try:
        options, rest = getopt.gnu_getopt(argv, "hs:p", LONG_OPTIONS)
    except getopt.GetoptError as exc:
        print(f"termux-job-scheduler: {exc}", file=sys.stderr)
        return 1
    if rest:
        print("termux-job-scheduler: too many arguments")
        return 1
    given = {name.lstrip("-"): value for name, value in options}
    given = {{"s": "script", "p": "pending", "h": "help"}.get(k, k): v for k, v in given.items()}
    path = jobs_file()
    jobs = json.loads(path.read_text()) if path.exists() else {}
    if "pending" in given:
        for job_id, job in sorted(jobs.items()):
            print(f"Pending job {job_id}: {job['script']} every {job['period_ms']} ms, persisted {job['persisted']}")
        return 0
    if "cancel" in given:
        jobs.pop(given.get("job-id", ""), None)
    elif "cancel-all" in given:
        jobs = {}
    else:
        script = Path(given.get("script", ""))
        if not script.is_file():
            print(f"termux-job-scheduler: no such script: {script}", file=sys.stderr)
            return 1
        try:
            job_id, period = int(given.get("job-id", "0")), int(given.get("period-ms", "0"))
            persisted = BOOLEANS[given.get("persisted", "false")]
        except (KeyError, ValueError):
            print("termux-job-scheduler: --job-id and --period-ms take integers, --persisted true or false", file=sys.stderr)
            return 1
        jobs[str(job_id)] = {"script": str(script.resolve()), "period_ms": period, "persisted": persisted}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(jobs))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
