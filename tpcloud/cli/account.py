"""Logging in and out of the TP-Link cloud, and where the username, password and 2-step
verification code come from: options, environment, or a prompt only when a person is at a
terminal, so that a script never hangs on one.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, Callable, Optional

import typer

from tpcloud import errors
from tpcloud.cli.common import run_account, show, usage_failure
from tpcloud.factory import Factory


def _credentials(ctx: typer.Context, username: Optional[str], password_stdin: bool) -> tuple[str, str]:
    """Username and password from the options, the environment, or a prompt — never a hang."""
    factory: Factory = ctx.obj
    interactive = factory.stdin_is_tty()
    username = username or factory.settings.username
    if not username:
        if not interactive:
            raise errors.UsageError("no username given", hint="pass --username or set TPCLOUD_USERNAME")
        username = typer.prompt("TP-Link account e-mail")
    if password_stdin:
        password = factory.stdin.readline().rstrip("\r\n")
        if not password:
            raise errors.UsageError("--password-stdin was given but standard input had no password")
    elif factory.settings.password:
        password = factory.settings.password
    elif interactive:
        password = typer.prompt("Password", hide_input=True)
    else:
        raise errors.UsageError("no password given", hint="use --password-stdin or set TPCLOUD_PASSWORD")
    return username.strip(), password


class Api(str, Enum):
    auto = "auto"
    v1 = "v1"
    v2 = "v2"


class CodeVia(str, Enum):
    email = "email"
    push = "push"


def _code_prompt(ctx: typer.Context) -> Callable[[str], str] | None:
    """A prompt for the 2-step verification code, only when a person is at a terminal."""
    if not ctx.obj.stdin_is_tty():
        return None
    return lambda how: typer.prompt(f"Verification code (sent {how})").strip()


def login(
    ctx: typer.Context,
    username: Optional[str] = typer.Option(None, "--username", "-u", help="Account e-mail [or TPCLOUD_USERNAME]."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from the first line of stdin."),
    store_password: bool = typer.Option(
        True, "--store-password/--no-store-password", help="Keep the password for silent re-login and local control."
    ),
    api: Api = typer.Option(Api.auto, "--api", help="Cloud API: auto (V1, then V2 when V1 refuses), v1, or v2."),
    code: Optional[str] = typer.Option(
        None, "--code", metavar="CODE", help="Finish a login waiting for its 2-step verification code."
    ),
    code_via: Optional[CodeVia] = typer.Option(
        None, "--code-via", help="How the cloud sends a 2-step verification code [default: email when offered]."
    ),
) -> None:
    """Log in to the TP-Link cloud and keep the session in the secret store.

    The password comes from --password-stdin, else TPCLOUD_PASSWORD, else a hidden prompt.
    With 2-step verification, a terminal is asked for the code; without one, login exits 10
    after the code is sent, and `tpcloud login --code CODE` finishes it.
    """
    if code is not None:
        email, store = run_account(ctx, lambda account: account.finish_login(code))
        show(ctx, f"Logged in as {email}. Secrets are kept in the {store}.")
        return
    try:
        user, password = _credentials(ctx, username, password_stdin)
    except errors.TpcloudError as exc:
        raise usage_failure(ctx, exc) from None
    ctx.obj.redactor.add(password)
    ask_code = _code_prompt(ctx)

    async def work(account: Any) -> tuple[str, str]:
        return await account.login(
            user, password, store_password=store_password, api=api.value,
            code_via=code_via.value if code_via else None, ask_code=ask_code,
        )

    email, store = run_account(ctx, work)
    show(ctx, f"Logged in as {email}. Secrets are kept in the {store}.")


def logout(ctx: typer.Context) -> None:
    """Forget the session, the stored password and the device cache."""

    async def work(account: Any) -> None:
        account.logout()

    run_account(ctx, work)
    show(ctx, "Logged out: secrets and cache removed.")
