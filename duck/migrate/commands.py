"""The data commands of ``duck``: backup, restore, import, export.

``duck/cli.py`` registers them with ``add_parsers`` and hands a parsed command to
``main``; everything they do is here and in this package. They find the database
as the admin commands do (duck/ctl): the running server's, through its data
directory's state file, or ``--mongo-uri``; ``--offline`` starts the embedded
database of ``--data-dir`` for a stopped server (``duck restore --offline`` into a
new data directory creates it). Exit codes as theirs: 0 done, 1 refused or failed,
2 usage, 3 no database to work on.
"""

from __future__ import annotations

import argparse
import imaplib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import trio

from duck.config import Config
from duck.ctl.admin import open_admin_store
from duck.ctl.locate import NoServer
from duck.store import Store, StoreError

from . import export, importer, maildir, mbox, remote
from .model import Folder
from .progress import Reporter

COMMANDS = ("backup", "restore", "import", "export")


def add_parsers(sub: argparse._SubParsersAction,  # type: ignore[type-arg]
                add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add the data commands to the ``duck`` parser's subcommands."""
    backup = sub.add_parser("backup", help="back up the deployment or one user")
    add_common(backup)
    backup.add_argument("target", type=Path, help="new (or empty) backup directory")
    backup.add_argument("--user", help="back up this user only")
    _quiet(backup)

    restore = sub.add_parser("restore", help="restore a backup")
    add_common(restore)
    restore.add_argument("source", type=Path, help="backup directory")
    restore.add_argument("--force", action="store_true",
                         help="replace what is there (the deployment, or the user)")
    _quiet(restore)

    imp = sub.add_parser("import", help="import mail from a Maildir, an mbox or IMAP")
    imp_sub = imp.add_subparsers(dest="source_kind", required=True)
    md = imp_sub.add_parser("maildir", help="a Maildir tree (Dovecot's layout)")
    md.add_argument("path", type=Path)
    mb = imp_sub.add_parser("mbox", help="an mbox file")
    mb.add_argument("path", type=Path)
    mb.add_argument("--folder", default="INBOX", help="mailbox to import into (INBOX)")
    mb.add_argument("--variant", choices=["mboxrd", "mboxo"], default="mboxrd")
    im = imp_sub.add_parser("imap", help="a remote IMAP account, over TLS")
    im.add_argument("--host", required=True)
    im.add_argument("--port", type=int, help="993 (implicit TLS) or 143 (STARTTLS)")
    im.add_argument("--remote-user", required=True, help="user name on the remote server")
    im.add_argument("--password-file", type=Path, required=True,
                    help="file holding the remote password (first line)")
    im.add_argument("--tls", choices=["implicit", "starttls"], default="implicit")
    im.add_argument("--ca-file", help="CA certificates to trust instead of the system's")
    for parser in (md, mb, im):
        add_common(parser)
        parser.add_argument("--user", required=True, help="duck user to import into")
        parser.add_argument("--prefix", default="",
                            help="put the imported folders under this mailbox")
        parser.add_argument("--limit", type=int,
                            help="stop after this many messages (a later run resumes)")
        _quiet(parser)

    exp = sub.add_parser("export", help="export a user's mail as mbox or Maildir")
    add_common(exp)
    exp.add_argument("format", choices=["mbox", "maildir"])
    exp.add_argument("target", type=Path, help="directory to write into")
    exp.add_argument("--user", required=True)
    _quiet(exp)


def _quiet(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    parser.add_argument(
        "--offline", action="store_true",
        help="no server is running: start the embedded database for this command")


#: Errors that end a data command with one line on stderr, not a traceback: refused
#: (a user that exists, no such user, a damaged backup), a source that cannot be
#: read, a remote IMAP server's refusal or a certificate it does not pass.
_CLEAR_ERRORS = (StoreError, OSError, ValueError, imaplib.IMAP4.error)


def main(args: argparse.Namespace, config: Config) -> int:
    """Run a parsed data command; its exit code (see the module docstring)."""
    try:
        return trio.run(_run, args, config)
    except (NoServer, *_CLEAR_ERRORS, BaseExceptionGroup) as exc:
        # The store is opened inside a nursery: its errors arrive in groups.
        leaves = _leaves(exc)
        if not all(isinstance(e, (NoServer, *_CLEAR_ERRORS)) for e in leaves):
            raise
        print(f"duck {args.command}: {leaves[0]}", file=sys.stderr)
        return 3 if isinstance(leaves[0], NoServer) else 1


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


async def _run(args: argparse.Namespace, config: Config) -> int:
    async with open_admin_store(config, args.offline) as store:
        if args.command == "backup":
            return await _backup(store, args)
        if args.command == "restore":
            return await _restore(store, args)
        if args.command == "import":
            return await _import(store, args)
        return await _export(store, args)


async def _backup(store: Store, args: argparse.Namespace) -> int:
    with Reporter("backup", quiet=args.quiet) as reporter:
        reporter.start(None)
        report = await store.backup(args.target, args.user, reporter.advance)
    print(f"backed up {report.users} users, {report.mailboxes} mailboxes, "
          f"{report.messages} messages, {report.bodies} bodies to {args.target}")
    return 0


async def _restore(store: Store, args: argparse.Namespace) -> int:
    with Reporter("restore", quiet=args.quiet) as reporter:
        reporter.start(None)
        report = await store.restore(args.source, force=args.force,
                                     progress=reporter.advance)
    print(f"restored {report.users} users, {report.mailboxes} mailboxes, "
          f"{report.messages} messages, {report.bodies} bodies")
    return 0


async def _import(store: Store, args: argparse.Namespace) -> int:
    user = await store.users.by_username(args.user)
    client = None
    folders: Sequence[Folder]
    if args.source_kind == "maildir":
        folders = maildir.folders(args.path)
    elif args.source_kind == "mbox":
        if not args.path.is_file():
            raise ValueError(f"{args.path}: no such file")
        folders = [mbox.MboxFolder(args.path, args.folder, args.variant)]
    else:
        password = args.password_file.read_text(encoding="utf-8").splitlines()[0]
        port = args.port or (993 if args.tls == "implicit" else 143)
        account = remote.Account(args.host, args.remote_user, password, port, args.tls,
                                 args.ca_file)
        client = await trio.to_thread.run_sync(remote.connect, account)
        folders = await trio.to_thread.run_sync(remote.folders, client, account)
    try:
        with Reporter("import", quiet=args.quiet) as reporter:
            report = await importer.run(store, user.id, folders, reporter,
                                        prefix=args.prefix, limit=args.limit)
    finally:
        if client is not None:
            await trio.to_thread.run_sync(client.logout)
    stopped = " (stopped at --limit; run again to go on)" if report.stopped else ""
    print(f"imported {report.imported}, already there {report.skipped}, "
          f"refused {report.refused}, from {report.folders} folders{stopped}")
    return 1 if report.refused else 0


async def _export(store: Store, args: argparse.Namespace) -> int:
    user = await store.users.by_username(args.user)
    args.target.mkdir(parents=True, exist_ok=True)
    with Reporter("export", quiet=args.quiet) as reporter:
        if args.format == "maildir":
            n = await export.to_maildir(store, user.id, args.target, reporter)
        else:
            n = await export.to_mbox(store, user.id, args.target, reporter)
    print(f"exported {n} messages to {args.target}")
    return 0
