"""The \\Recent claim of a journal read, made without holding back its updates.

A session whose journal read brings new messages claims \\Recent for them
(``Messages.claim_recent``; RFC 3501 §2.3.2: one session sees a message \\Recent).
The claim writes the mailbox document, and that write can wait a minute or more:
behind a transaction a killed process left open on the document (the server ends
it only after 60 s; docs/architecture.md, "Facts about the embedded database
(measured)"), or for the user's write lock here, held meanwhile by a writer
retrying against that transaction. Awaited before the updates went out, the
claim held them back as long: the soak (bench/soak) had an IDLE session read a
delivery's entries and never send its EXISTS ("IDLE view equals SELECT + FETCH").
A database call is not cancellable (``Database.run``), so a timeout around the
claim could not help.

So the claim runs in a task of its own and the read waits for it at most
``RECENT_CLAIM_WAIT``: past that the updates go out without \\Recent for those
messages, and the session takes them as \\Recent when the claim is made after all
(its FETCH FLAGS show it from then on; a claim that fails leaves them \\Recent for
no session, as before). A claim that one made or in progress here covers needs no
task: it gets nothing (``Messages.recent_taken``), as the other sessions of this
process woken by the same delivery find.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable

import trio

from duck.store import Store, StoreError

from .view import SelectedView

log = logging.getLogger(__name__)

#: Seconds a journal read waits for its \Recent claim before its updates go out.
RECENT_CLAIM_WAIT = 1.0


async def claim(store: Store, view: SelectedView, selected: Callable[[], bool]) -> None:
    """Claim \\Recent for ``view.new`` and add what this session got to
    ``view.recent``; ``selected``: whether the view is still the session's (for a
    claim made after the wait)."""
    new = tuple(view.new)
    mailbox_id = view.mailbox.id
    if store.messages.recent_taken(mailbox_id, new[-1]):
        return
    done = trio.Event()
    got: list[int] = []  # (the first UID \Recent for this session, once made)
    waited: list[bool] = []

    def take(first: int) -> None:
        view.recent.update(u for u in new if u >= first and u not in view.expunged
                           and (u in view.new or view.seq_of(u) is not None))

    async def run() -> None:
        try:
            got.append(await store.messages.claim_recent(mailbox_id, new[-1]))
        except StoreError as exc:
            log.warning("\\Recent claim failed: %r", exc)
        except Exception:  # (a system task's exception would end the whole run)
            log.exception("\\Recent claim failed")
        finally:
            done.set()
        if got and waited and selected():
            take(got[0])  # (made after the read stopped waiting for it)

    # A system task: it outlives the session's command, whose updates do not wait
    # for it past RECENT_CLAIM_WAIT. (In this task's context: its round trips count
    # under the command.)
    trio.lowlevel.spawn_system_task(run, context=contextvars.copy_context())
    with trio.move_on_after(RECENT_CLAIM_WAIT):
        await done.wait()
    if not done.is_set():
        waited.append(True)
    elif got:
        take(got[0])
