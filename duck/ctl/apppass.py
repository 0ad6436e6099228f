"""``duck apppass create|list|revoke``: application passwords from the command line.

The secret is printed once, by ``create``; ``list`` shows everything else (never a
secret: the store keeps only its digest). The database is found as for the other
admin commands (admin.py: the running server's, ``--mongo-uri``, or ``--offline``);
exit codes are theirs too.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

import trio

from ..config import Config
from ..store import SCOPES, EmbeddedDatabaseError, InvalidInput, NotFound, Store, StoreError
from .admin import OK, REFUSED, UNAVAILABLE, open_admin_store
from .locate import NoServer

COMMAND = "apppass"


def add_parsers(sub: Any, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Register ``duck apppass`` and its subcommands."""

    def common(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        add_common(parser)
        parser.add_argument(
            "--offline", action="store_true",
            help="no server is running: start the embedded database for this command")
        parser.add_argument("user", help="user id, user name or one of its addresses")
        return parser

    apppass = sub.add_parser(COMMAND, help="manage application passwords")
    commands = apppass.add_subparsers(dest="apppass_command", required=True)
    create = common(commands.add_parser("create", help="create one (its secret is shown once)"))
    create.add_argument("--description", default="", help="what it is for (a device)")
    create.add_argument("--scope", action="append", choices=SCOPES, dest="scopes",
                        help="a protocol it may log in to (repeat; default imap and pop3)")
    common(commands.add_parser("list", help="list a user's application passwords"))
    revoke = common(commands.add_parser("revoke", help="revoke one (logins fail at once)"))
    revoke.add_argument("id", help="the application password's id (from list)")


def _when(value: Any) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


async def _handle(store: Store, args: argparse.Namespace) -> list[str]:
    user = await store.users.lookup(args.user)
    if args.apppass_command == "create":
        made = await store.app_passwords.create(user.id, args.description,
                                                args.scopes or ["imap", "pop3"])
        item = made.app_password
        return [f"id: {item.id}", f"scopes: {','.join(item.scopes)}",
                f"password: {made.secret}",
                "(shown only now: it is kept hashed and cannot be shown again)"]
    if args.apppass_command == "list":
        return [f"{a.id}\t{','.join(a.scopes)}\tcreated {_when(a.created)}\t"
                f"last used {_when(a.last_used)} from {a.last_ip or '-'}\t{a.description}"
                for a in await store.app_passwords.of_user(user.id)]
    await store.app_passwords.revoke(user.id, args.id)
    return [f"revoked {args.id}"]


async def _run(args: argparse.Namespace, config: Config) -> list[str]:
    async with open_admin_store(config, args.offline) as store:
        return await _handle(store, args)


def run(args: argparse.Namespace, config: Config) -> int:
    """Run a ``duck apppass`` subcommand; the exit code."""
    try:
        try:
            lines = trio.run(_run, args, config)
        except BaseExceptionGroup as group:
            leaf: BaseException = group
            while isinstance(leaf, BaseExceptionGroup) and len(leaf.exceptions) == 1:
                leaf = leaf.exceptions[0]
            if leaf is group:
                raise
            raise leaf from None
    except (NotFound, InvalidInput) as exc:
        print(f"duck: {exc}", file=sys.stderr)
        return REFUSED
    except (NoServer, EmbeddedDatabaseError) as exc:
        print(f"duck: {exc}", file=sys.stderr)
        return UNAVAILABLE
    except StoreError as exc:
        print(f"duck: {exc}", file=sys.stderr)
        return UNAVAILABLE if exc.code == "UNAVAILABLE" else REFUSED
    for line in lines:
        print(line)
    return OK
