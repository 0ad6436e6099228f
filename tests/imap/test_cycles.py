"""The commands a busy client repeats leave no reference cycle behind: what a
command makes is freed when it ends, not left to the cyclic collector, whose
young-generation passes under imaptest had been finding ~8,000 objects a second
(a FETCH's builder and its plan's closures, FETCH templates dropped from their
cache) and taking ~2.5% of the loop's time."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import trio
from imapclient import IMAPClient

from duck.imap.grammar import resp_fetch

from .conftest import MESSAGE, PASSWORD, USER, blocking


def _of_duck(obj: object) -> bool:
    """Whether ``obj`` is an object or a function of duck's own code."""
    module = getattr(obj, "__module__", None) if callable(obj) and not isinstance(obj, type) \
        else type(obj).__module__
    return isinstance(module, str) and module.startswith("duck.")


@contextmanager
def _cyclic_garbage() -> Iterator[list[object]]:
    """Collects nothing automatically inside; then gives what only the cyclic
    collector would have freed."""
    found: list[object] = []
    gc.collect()
    gc.disable()
    try:
        yield found
    finally:
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            gc.collect()
            found.extend(gc.garbage)
            gc.garbage.clear()
        finally:
            gc.set_debug(0)
            gc.enable()


async def test_busy_commands_leave_no_cycles(imap_server: Any) -> None:
    def connect() -> IMAPClient:
        client = IMAPClient("127.0.0.1", port=imap_server.ports["imap"], ssl=False, timeout=20)
        client.login(USER, PASSWORD)
        for _ in range(3):
            client.append("INBOX", MESSAGE)
        client.select_folder("INBOX")
        return client

    with trio.fail_after(60):
        c = await blocking(connect)
        # Every kind of FETCH item list once before counting: what a process keeps
        # for good (a template, the parse memo's entries) is made then.
        lists = [["FLAGS"], ["UID", "RFC822.SIZE", "ENVELOPE"], ["BODYSTRUCTURE", "INTERNALDATE"],
                 ["BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)]", "BODY.PEEK[1]"],
                 ["BODY[TEXT]<0.8>", "MODSEQ"], ["BODY[]"]]

        def round_of_commands() -> None:
            uids = c.search()
            for items in lists:
                c.fetch(uids, items)
            c.add_flags(uids[:1], ["$Label"])
            c.remove_flags(uids[:2], ["\\Seen"])
            c.append("INBOX", MESSAGE)
            c.delete_messages(uids[:1])
            c.expunge()
            c.noop()
            c.folder_status("INBOX", ["MESSAGES", "UNSEEN"])
            c.list_folders()

        await blocking(round_of_commands)
        with _cyclic_garbage() as garbage:
            for _ in range(3):
                await blocking(round_of_commands)
            # Templates dropped from their cache (as imaptest's random item lists
            # make it do) are freed, not left to the collector.
            resp_fetch._TEMPLATES.clear()
        ours = [obj for obj in garbage if _of_duck(obj)]
        assert not ours, sorted({repr(type(o)) + getattr(o, "__qualname__", "") for o in ours})
        await blocking(c.logout)
