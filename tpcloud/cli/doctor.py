"""The doctor command: runs the checks of tpcloud/doctor.py and prints them, as a table or JSON,
exiting with the first problem's exit code.
"""

from __future__ import annotations

import typer

from tpcloud.cli.common import boundary, show
from tpcloud.output import to_json


def doctor(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Check the secret store, the login, the cache, the cloud and the devices on the LAN.

    Exits with the exit code of the first problem found, 0 when there is none.
    """
    from tpcloud.doctor import diagnose, exit_code
    from tpcloud.output import doctor_table

    checks = boundary(ctx, lambda: diagnose(ctx.obj))
    show(ctx, to_json([c.to_dict() for c in checks]) if as_json else doctor_table(checks))
    raise typer.Exit(exit_code(checks))
