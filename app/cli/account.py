"""``ntm login`` and ``ntm logout``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import httpx
import typer

from app.cli import credentials as creds
from app.cli.app import (
    JsonOption,
    app,
    handles_errors,
    print_json,
    stdout,
)
from app.cli.client import Api, CliError, describe


@app.command()
@handles_errors
def login(
    url: Annotated[
        str | None, typer.Option("--url", help="The server (default: NTM_URL, the stored one)")
    ] = None,
    api_key: Annotated[
        str | None, typer.Option("--api-key", help="An API key (asked for when not given)")
    ] = None,
    email: Annotated[
        str | None, typer.Option("--email", "-e", help="Sign in with email and password instead")
    ] = None,
    password: Annotated[
        str | None, typer.Option("--password", help="With --email (asked for when not given)")
    ] = None,
    json_: JsonOption = False,
) -> None:
    """Sign in and keep the credential in your config directory (mode 0600)."""
    server = (url or creds.server_url()).rstrip("/")
    expires_at: str | None = None
    if email is not None:
        password = password or typer.prompt("Password", hide_input=True)
        try:
            response = httpx.post(
                f"{server}/api/v1/auth/login",
                data={"username": email, "password": password},
                timeout=30,
            )
        except httpx.TransportError as exc:
            raise CliError(f"cannot reach {server}: {exc}") from None
        if response.status_code >= 400:
            raise describe(response)
        body = response.json()
        token, kind = body["access_token"], "jwt"
        expires = datetime.now(UTC) + timedelta(seconds=int(body["expires_in"]))
        expires_at = expires.isoformat(timespec="seconds")
    else:
        token = (api_key or typer.prompt("API key", hide_input=True)).strip()
        kind = "api_key"
    candidate = creds.Credentials(url=server, token=token, kind=kind, expires_at=expires_at)
    with Api(candidate) as api:
        me = api.json("GET", "/users/me")
    candidate.email = me["email"]
    path = creds.save(candidate)
    if json_:
        print_json({"url": server, "email": me["email"], "kind": kind, "path": str(path)})
        return
    what = "API key" if kind == "api_key" else f"access token (valid until {expires_at})"
    stdout().print(f"Signed in to {server} as {me['email']}; the {what} is kept in {path}.")


@app.command()
@handles_errors
def logout(json_: JsonOption = False) -> None:
    """Forget the stored credential."""
    removed = creds.remove()
    if json_:
        print_json({"removed": removed, "path": str(creds.credentials_path())})
    else:
        stdout().print("Signed out." if removed else "Not signed in.")
