"""``duck user|address|mailbox|doctor``: the administrator's commands.

Each opens the running server's database (``locate.py``; ``--mongo-uri`` names one
directly, ``--offline`` starts the embedded one for a server that is stopped), does
one thing through the store's public API, prints the result on stdout and errors as
one line on stderr. Exit codes: 0 done, 1 refused (no such user, a name taken, bad
input; ``doctor`` found problems it did not fix), 2 usage, 3 no database to work on.
"""

from __future__ import annotations

import argparse
import getpass
import json
import re
import sys
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import trio

from ..config import Config
from ..store import (
    AlreadyExists,
    EmbeddedDatabase,
    EmbeddedDatabaseError,
    InvalidInput,
    NotFound,
    Store,
    StoreError,
    StoreUnavailable,
    User,
)
from .locate import NoServer, read_state

OK, REFUSED, USAGE, UNAVAILABLE = 0, 1, 2, 3
#: The top-level commands this module runs.
COMMANDS = ("user", "address", "mailbox", "doctor")


class Usage(Exception):
    """A usage error found after parsing (exit code 2)."""


def add_parsers(sub: Any, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add the admin commands to the ``duck`` parser's subcommands."""

    def common(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        add_common(parser)
        parser.add_argument(
            "--offline", action="store_true",
            help="no server is running: start the embedded database for this command")
        return parser

    user = sub.add_parser("user", help="manage users")
    users = user.add_subparsers(dest="user_command", required=True)
    create = common(users.add_parser("create", help="create a user"))
    create.add_argument("address", help="the user's email address (also the user name)")
    create.add_argument("--password-file", type=Path,
                        help="read the password from this file ('-': standard input)")
    create.add_argument("--quota", type=_size, help="storage quota in bytes (or 10M, 2G)")
    listing = common(users.add_parser("list", help="list users, a page at a time"))
    listing.add_argument("--query", help="only user names containing this")
    listing.add_argument("--limit", type=int, default=100, help="users per page (default 100)")
    listing.add_argument("--after", help="the page after this user name")
    listing.add_argument("--json", action="store_true", help="JSON output")
    show = common(users.add_parser("show", help="show a user"))
    show.add_argument("user", help="user id, user name or one of its addresses")
    show.add_argument("--json", action="store_true", help="JSON output")
    passwd = common(users.add_parser("passwd", help="set a user's password"))
    passwd.add_argument("user", help="user id, user name or one of its addresses")
    passwd.add_argument("--password-file", type=Path,
                        help="read the password from this file ('-': standard input)")
    quota = common(users.add_parser("quota", help="show or set a user's quota"))
    quota.add_argument("user", help="user id, user name or one of its addresses")
    quota.add_argument("bytes", nargs="?", type=_size, help="new quota (bytes, or 10M, 2G)")
    for name, text in (("disable", "refuse the user's logins (mail is still delivered)"),
                       ("enable", "allow the user's logins again")):
        cmd = common(users.add_parser(name, help=text))
        cmd.add_argument("user", help="user id, user name or one of its addresses")
    delete = common(users.add_parser("delete", help="delete a user and all its mail"))
    delete.add_argument("user", help="user id, user name or one of its addresses")
    delete.add_argument("--yes", action="store_true", help="really delete (required)")

    address = sub.add_parser("address", help="manage the addresses routed to users")
    addresses = address.add_subparsers(dest="address_command", required=True)
    for name, text in (("add", "route one more address to a user"),
                       ("remove", "stop routing an address to a user")):
        cmd = common(addresses.add_parser(name, help=text))
        cmd.add_argument("user", help="user id, user name or one of its addresses")
        cmd.add_argument("address", help="the address")
    alist = common(addresses.add_parser("list", help="a user's addresses"))
    alist.add_argument("user", help="user id, user name or one of its addresses")

    mailbox = sub.add_parser("mailbox", help="look at users' mailboxes")
    mailboxes = mailbox.add_subparsers(dest="mailbox_command", required=True)
    mlist = common(mailboxes.add_parser("list", help="a user's mailboxes and their counts"))
    mlist.add_argument("user", help="user id, user name or one of its addresses")

    doctor = common(sub.add_parser(
        "doctor", help="check indexes, counters, quota, bodies, digests and contents"))
    doctor.add_argument("--fix", action="store_true", help="repair what is found")
    doctor.add_argument(
        "--grace", type=float, default=3600.0,
        help="leave bodies younger than this many seconds alone (in flight; default 3600)")


def _size(text: str) -> int:
    match = re.fullmatch(r"\s*(\d+)\s*([KMGT]?)(i?B)?\s*", text, re.IGNORECASE)
    if match is None:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (bytes, or 10M, 2G)")
    power = " KMGT".index(match.group(2).upper() or " ")
    return int(match.group(1)) * 1024**power


def read_password(path: Path | None) -> str:
    """The password from a file, standard input ('-') or the terminal (twice)."""
    if path is not None:
        try:
            text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise Usage(f"cannot read the password file {path}: "
                        f"{getattr(exc, 'strerror', None) or exc}") from exc
        password = text.splitlines()[0] if text else ""
        if not password:
            raise Usage(f"the password file {path} is empty")
        return password
    if not sys.stdin.isatty():
        raise Usage("no terminal to ask the password on: pass --password-file")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Repeat: ") != first:
        raise Usage("the passwords differ")
    return first


@asynccontextmanager
async def open_admin_store(config: Config, offline: bool, *, prepare: bool = True) -> Any:
    """The store of the running server's database (see the module docstring);
    ``prepare=False`` creates no missing index (``doctor`` reports them)."""
    async with trio.open_nursery() as nursery:
        if config.mongo_uri:
            uri, name = config.mongo_uri, config.database
        elif offline:
            print(f"duck: starting the embedded database on {config.data_dir} "
                  "(a few seconds; ~20 s after a crash)", file=sys.stderr)
            embedded = EmbeddedDatabase(
                data_dir=config.data_dir, engine=config.embedded_engine,  # type: ignore[arg-type]
                cache_size=config.embedded_cache_size,
                log_file_max=config.embedded_log_file_max)
            uri, name = await nursery.start(embedded.run), config.database
        else:
            state = read_state(config.data_dir)
            uri, name = state.mongo_uri, state.database
        store = await Store.open(uri, name, prepare=prepare)
        try:
            yield store
        finally:
            with trio.CancelScope(shield=True):
                await store.aclose()
            nursery.cancel_scope.cancel()


def run(args: argparse.Namespace, config: Config) -> int:
    """Run one admin command; its exit code."""
    handler = _HANDLERS[(args.command, _subcommand(args))]
    try:
        if getattr(args, "password_file", "unset") != "unset":
            args.password = read_password(args.password_file)
        if args.command == "user" and args.user_command == "delete" and not args.yes:
            raise Usage(f"deleting {args.user} removes all its mail: add --yes")
        try:
            return trio.run(_run, handler, args, config)
        except BaseExceptionGroup as group:
            # A nursery wraps what failed in it: the one error is what to report.
            leaf: BaseException = group
            while isinstance(leaf, BaseExceptionGroup) and len(leaf.exceptions) == 1:
                leaf = leaf.exceptions[0]
            if leaf is group:
                raise
            raise leaf from None
    except Usage as exc:
        print(f"duck: {exc}", file=sys.stderr)
        return USAGE
    except (NotFound, InvalidInput, AlreadyExists) as exc:
        print(f"duck: {exc}", file=sys.stderr)
        return REFUSED
    except (NoServer, EmbeddedDatabaseError) as exc:
        print(f"duck: {exc}", file=sys.stderr)
        return UNAVAILABLE
    except StoreUnavailable as exc:
        print(f"duck: the database does not answer ({exc})", file=sys.stderr)
        return UNAVAILABLE
    except StoreError as exc:
        print(f"duck: {exc}", file=sys.stderr)
        return REFUSED


def _subcommand(args: argparse.Namespace) -> str | None:
    return getattr(args, f"{args.command}_command", None)


Handler = Callable[[Store, argparse.Namespace], Awaitable[int]]


async def _run(handler: Handler, args: argparse.Namespace, config: Config) -> int:
    async with open_admin_store(config, args.offline,
                                prepare=args.command != "doctor") as store:
        return await handler(store, args)


def _user_dict(user: User) -> dict[str, Any]:
    return {"id": user.id, "username": user.username, "quota": user.quota,
            "used": user.storage_used, "disabled": user.disabled,
            "created": user.created.isoformat(), "pop3_folder": user.pop3_folder}


async def _create(store: Store, args: argparse.Namespace) -> int:
    user = await store.users.create(args.address, args.password, quota=args.quota)
    print(user.id)
    return OK


async def _list(store: Store, args: argparse.Namespace) -> int:
    users, after = await store.users.list(args.query, limit=args.limit, after=args.after)
    if args.json:
        print(json.dumps({"users": [_user_dict(u) for u in users], "next": after}))
        return OK
    for user in users:
        state = " disabled" if user.disabled else ""
        print(f"{user.username}\t{user.id}\t{user.storage_used}/{user.quota}{state}")
    if after is not None:
        print(f"duck: more users: --after {after}", file=sys.stderr)
    return OK


async def _show(store: Store, args: argparse.Namespace) -> int:
    user = await store.users.lookup(args.user)
    addresses = await store.admin.addresses(user.id)
    info = {**_user_dict(user), "addresses": [a for a, _ in addresses]}
    if args.json:
        print(json.dumps(info))
    else:
        for key, value in info.items():
            shown = ", ".join(value) if isinstance(value, list) else value
            print(f"{key}: {shown}")
    return OK


async def _passwd(store: Store, args: argparse.Namespace) -> int:
    user = await store.users.lookup(args.user)
    await store.admin.set_password(user.id, args.password)
    print(f"password of {user.username} changed")
    return OK


async def _quota(store: Store, args: argparse.Namespace) -> int:
    user = await store.users.lookup(args.user)
    if args.bytes is not None:
        await store.admin.set_quota(user.id, args.bytes)
    used, allowed = await store.quota(user.id)
    print(f"{user.username}: {used} of {allowed} bytes used")
    return OK


async def _disable(store: Store, args: argparse.Namespace) -> int:
    user = await store.users.lookup(args.user)
    disabled = args.user_command == "disable"
    await store.admin.set_disabled(user.id, disabled)
    print(f"{user.username} {'disabled' if disabled else 'enabled'}")
    return OK


async def _delete(store: Store, args: argparse.Namespace) -> int:
    user = await store.users.lookup(args.user)
    await store.admin.delete_user(user.id)
    print(f"{user.username} deleted")
    return OK


async def _address(store: Store, args: argparse.Namespace) -> int:
    user = await store.users.lookup(args.user)
    if args.address_command == "add":
        print(await store.admin.add_address(user.id, args.address))
    elif args.address_command == "remove":
        await store.admin.remove_address(user.id, args.address)
        print(f"{args.address} removed from {user.username}")
    else:
        for address, main in await store.admin.addresses(user.id):
            print(f"{address}{'  (main)' if main else ''}")
    return OK


async def _mailboxes(store: Store, args: argparse.Namespace) -> int:
    user = await store.users.lookup(args.user)
    for box in await store.mailboxes.list(user.id):
        use = f"  {box.special_use}" if box.special_use else ""
        print(f"{box.path}\t{box.message_count} messages, {box.unseen_count} unseen, "
              f"{box.size} bytes, uidvalidity {box.uid_validity}{use}")
    return OK


async def _doctor(store: Store, args: argparse.Namespace) -> int:
    if not args.grace >= 0:
        raise Usage("--grace must be a number of seconds")
    report = await store.doctor(fix=args.fix, grace=timedelta(seconds=args.grace))
    examined = ", ".join(f"{n} {kind}" for kind, n in report.examined.items())
    print(f"examined {examined}")
    for f in report.findings:
        state = "fixed" if f.fixed else ("cannot be fixed" if not f.fixable else "not fixed")
        print(f"{f.check}: {f.subject}: {f.problem} [{state}]")
    if report.healthy:
        print("ok" if not report.findings else "ok: everything found was fixed")
        return OK
    if not args.fix:
        print("problems found; `duck doctor --fix` repairs what can be", file=sys.stderr)
    return REFUSED


_HANDLERS: dict[tuple[str, str | None], Handler] = {
    ("user", "create"): _create, ("user", "list"): _list, ("user", "show"): _show,
    ("user", "passwd"): _passwd, ("user", "quota"): _quota, ("user", "disable"): _disable,
    ("user", "enable"): _disable, ("user", "delete"): _delete,
    ("address", "add"): _address, ("address", "remove"): _address,
    ("address", "list"): _address, ("mailbox", "list"): _mailboxes,
    ("doctor", None): _doctor,
}
