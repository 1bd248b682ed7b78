"""``keys`` commands: create, list and revoke the API keys of machine clients."""

from __future__ import annotations

from typing import Annotated

import typer

from ..settings import DatabaseSettings
from .database import Database
from .keys import ApiKeyError, KeyStore

keys_cli = typer.Typer(help="Manage the API keys of machine clients.", no_args_is_help=True)
ScopeOption = Annotated[
    list[str] | None, typer.Option("--scope", help="Scope to grant (repeat it); default predict.")
]


def _store() -> KeyStore:
    return KeyStore(Database(DatabaseSettings().database_url))


@keys_cli.command("add")
def add(name: str, scope: ScopeOption = None) -> None:
    """Create a key and print it once; only a digest of it is stored."""
    try:
        key = _store().add(name, scope or ["predict"])
    except (ApiKeyError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(key)


@keys_cli.command("list")
def list_keys() -> None:
    """Show every key by name, its first characters, scopes and state."""
    for key in _store().list():
        state = "revoked" if key.revoked else "active"
        typer.echo(f"{key.name}\t{key.hint}...\t{' '.join(key.scopes)}\t{state}")


@keys_cli.command("revoke")
def revoke(name: str) -> None:
    """Revoke a key: requests with it are refused from now on."""
    try:
        _store().revoke(name)
    except ApiKeyError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"revoked key {name}")
