"""Importing a source's folders into a user's mailboxes through APPEND.

Each message goes through ``store.messages.append`` with its flags and internal
date, like an IMAP APPEND, and with its import-ledger key, which the store writes
in the message's own transaction (duck/store/mail/imports.py): a second run, after
an interruption of any kind, skips exactly what the first stored.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

import attrs
import trio

from duck.store import AlreadyExists, InvalidInput, NotFound, Store, TooBig

from .model import Folder, SourceMessage
from .progress import Reporter

log = logging.getLogger(__name__)


@attrs.define
class ImportReport:
    """What an import did."""

    folders: int = 0
    imported: int = 0
    skipped: int = 0
    refused: int = 0
    #: True when ``limit`` stopped the run before the end.
    stopped: bool = False


async def run(store: Store, user_id: str, folders: Sequence[Folder], reporter: Reporter,
              *, prefix: str = "", limit: int | None = None) -> ImportReport:
    """Import ``folders`` (blocking methods, called in worker threads) for the user,
    under the mailbox ``prefix`` when given; stop after ``limit`` messages."""
    report = ImportReport(folders=len(folders))
    plan: list[tuple[Folder, str, list[str]]] = []
    for folder in folders:
        keys = await trio.to_thread.run_sync(folder.keys)
        done = await store.imports.done(user_id, folder.source)
        todo = [k for k in keys if k not in done]
        report.skipped += len(keys) - len(todo)
        target = f"{prefix}/{folder.path}" if prefix else folder.path
        plan.append((folder, target, todo))
    reporter.start(sum(len(todo) for _, _, todo in plan))
    for folder, target, todo in plan:
        await _ensure_mailbox(store, user_id, target)
        if not todo:
            continue
        messages: Iterator[SourceMessage] = iter(folder.read(todo))
        while True:
            if limit is not None and report.imported >= limit:
                report.stopped = True
                return report
            message = await trio.to_thread.run_sync(next, messages, None)
            if message is None:
                break
            try:
                await store.messages.append(
                    user_id, target, message.data, message.flags, message.internal_date,
                    ledger=(folder.source, message.key))
                report.imported += 1
            except AlreadyExists:
                report.skipped += 1  # another import of the same source got there first
            except (InvalidInput, TooBig) as exc:
                report.refused += 1
                log.warning("%s %s: not imported: %s", folder.source, message.key, exc)
            reporter.advance()
    return report


async def _ensure_mailbox(store: Store, user_id: str, path: str) -> None:
    try:
        await store.mailboxes.get(user_id, path)
    except NotFound:
        try:
            await store.mailboxes.create(user_id, path)
        except AlreadyExists:
            pass  # created meanwhile
