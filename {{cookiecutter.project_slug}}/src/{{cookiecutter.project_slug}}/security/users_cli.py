"""``users`` commands: add, list and disable the users who log in for tokens."""

from __future__ import annotations

import getpass
import sys
from typing import Annotated

import typer

from ..settings import DatabaseSettings
from .database import Database
from .users import UserError, UserStore

users_cli = typer.Typer(help="Manage the users who log in for tokens.", no_args_is_help=True)
ScopeOption = Annotated[
    list[str] | None, typer.Option("--scope", help="Scope to grant (repeat it); default predict.")
]


def _store() -> UserStore:
    return UserStore(Database(DatabaseSettings().database_url))


def _read_password() -> str:
    """One line from standard input, so scripts can pipe it; a hidden prompt on a terminal."""
    if sys.stdin.isatty():
        return getpass.getpass("Password: ")
    return sys.stdin.readline().rstrip("\r\n")


@users_cli.command("add")
def add(name: str, scope: ScopeOption = None) -> None:
    """Add a user; the password is read as one line from standard input."""
    try:
        _store().add(name, _read_password(), scope or ["predict"])
    except (UserError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"added user {name}")


@users_cli.command("list")
def list_users() -> None:
    """Show every user with its scopes and state."""
    for user in _store().list():
        state = "disabled" if user.disabled else "active"
        typer.echo(f"{user.name}\t{' '.join(user.scopes)}\t{state}\t{user.created_at:%Y-%m-%d}")


@users_cli.command("disable")
def disable(name: str) -> None:
    """Stop a user from logging in; its tokens stop working within APP_USER_CACHE_TTL_S."""
    try:
        _store().disable(name)
    except UserError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"disabled user {name}")
