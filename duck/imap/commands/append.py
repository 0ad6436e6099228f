"""APPEND with flags and date (RFC 3501 §6.3.11), APPENDUID (RFC 4315), MULTIAPPEND
(RFC 3502), APPENDLIMIT (RFC 7889) and CATENATE (RFC 4469, catenate.py).

The literal's size is checked when it is announced, before a byte of it is read:
the session refuses a synchronizing literal over the limit with NO [TOOBIG]
(the reader reports the announcement as ContinuationNeeded). An accepted literal
is streamed into the store's ingest as it arrives (duck/imap/incoming.py); once the whole
command is read, each message is delivered here, and the tagged OK follows only
when all of them are durable. Small literals are kept whole and stored in one
call, as are those of a command read before login.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from duck.mime.binary import encode_binary_parts
from duck.store import (
    DeliveryTarget,
    Ingested,
    InvalidInput,
    JournalEntry,
    NotFound,
    StoreError,
    normalize_path,
)

from ..context import Done
from ..errors import no
from ..grammar.cmd_append import Append, Catenate
from ..grammar.resp_codes import AppendUid
from ..grammar.sequence import SequenceSet
from ..namespaces import flag_right, in_other_namespace, open_mailbox
from . import catenate
from .registry import command
from .states import AUTHENTICATED

if TYPE_CHECKING:
    from duck.store import AppendResult, Delivered

    from ..context import CommandContext

log = logging.getLogger(__name__)


@command(Append, AUTHENTICATED)
async def append(s: CommandContext, cmd: Append) -> Done:
    """Store each message; all or nothing for MULTIAPPEND."""
    assert s.user is not None
    limit = s.config.max_message_size
    for msg in cmd.messages:
        if not isinstance(msg.data, Catenate) and not msg.streamed and len(msg.data) > limit:
            raise no(f"message larger than {limit} octets", "TOOBIG")
    # The mailbox is not looked up first: the delivery finds it by name in the
    # same round trip that allocates the UID, and says NotFound when it is not there.
    # Another owner's mailbox is looked up, for its rights (RFC 4314 §4: i).
    owner_id, granted = s.user.id, None
    if in_other_namespace(cmd.mailbox):
        _, place, granted = await open_mailbox(s, cmd.mailbox, "i")
        owner_id, path = place.owner_id, place.path
    else:
        try:
            path = normalize_path(cmd.mailbox)
        except InvalidInput:
            raise no("no such mailbox", "TRYCREATE") from None
    pieces: dict[int, list[catenate.Piece]] = {}
    if any(isinstance(msg.data, Catenate) for msg in cmd.messages):
        # RFC 4469 §5: every URL is checked before anything is appended; a missing
        # target mailbox is told first (TRYCREATE), as a plain APPEND tells it.
        try:
            await s.store.mailboxes.get(owner_id, path)
        except NotFound:
            raise no("no such mailbox", "TRYCREATE") from None
        resolver = catenate.Resolver(s)
        for i, msg in enumerate(cmd.messages):
            if isinstance(msg.data, Catenate):
                pieces[i] = await catenate.resolve_all(s, msg.data, resolver, limit)
    uids: list[int] = []
    uidvalidity = 0
    mailbox_id = ""
    try:
        for i, msg in enumerate(cmd.messages):
            # RFC 3501 §2.3.2: \Recent is not a client's to set.
            flags = [f for f in msg.flags if f.lower() != "\\recent"]
            seen_too = False
            if granted is not None:
                # RFC 4314 §4: flags the user may not set are not set; this reader's
                # \Seen is their own, not the stored (owner's) one.
                seen_too = "\\Seen" in flags and "s" in granted
                flags = [f for f in flags if f != "\\Seen" and flag_right(f) in granted]
            # Into the selected mailbox: the message is \Recent for this session
            # when nothing else changed the mailbox since the view last moved (the
            # claim is part of the delivery's write), and the view takes the new
            # message from the result instead of reading the journal.
            view = s.view
            claim = (None if view is None or view.readonly or view.mailbox.path != path
                     or view.mailbox.user_id != owner_id
                     else (view.mailbox.id, view.modseq))
            result: AppendResult | Delivered
            received = s.incoming.take(i) if msg.streamed else msg.data
            if isinstance(received, StoreError):
                raise received  # (from the store while the literal was read)
            if i in pieces or isinstance(received, Ingested):
                target = DeliveryTarget(owner_id, path, tuple(flags), msg.date,
                                        claim_recent=claim)
                result = (await catenate.store(s, pieces[i], target, limit) if i in pieces
                          else await _deliver(s, received, target))
            else:
                assert isinstance(received, bytes)
                # RFC 3516 §4.3: parts sent as binary octets with NUL in them are kept
                # base64-encoded (BODY[] may not carry NUL; BINARY[] decodes them).
                data = encode_binary_parts(received) if msg.binary else received
                result = await s.store.messages.append(
                    owner_id, path, data, flags, msg.date, claim_recent=claim
                )
            if seen_too:
                await s.store.acl.set_seen(result.mailbox_id, s.user.id, add=[result.uid])
            uids.append(result.uid)
            uidvalidity, mailbox_id = result.uid_validity, result.mailbox_id
            applied = s.wrote(mailbox_id, [JournalEntry(
                mailbox_id, result.modseq, "exists", uid=result.uid, flags=result.flags)])
            if result.recent_from is not None and view is not None and view.track_recent:
                if applied:
                    view.recent.update(u for u in view.new if u >= result.recent_from)
                elif view.mailbox.id == mailbox_id:
                    # (The view is behind: the journal brings the message later.)
                    view.claim_later(range(result.recent_from, result.uid + 1))
    except NotFound:
        if uids:
            await _undo(s, mailbox_id, uids)
        raise no("no such mailbox", "TRYCREATE") from None
    except StoreError:
        if uids:
            await _undo(s, mailbox_id, uids)
        raise
    return Done("APPEND completed", AppendUid(uidvalidity, SequenceSet.from_ints(uids)))


async def _deliver(s: CommandContext, ingested: Ingested | bytes | Catenate,
                   target: DeliveryTarget) -> Delivered:
    """Deliver a message the session streamed into the store's ingest."""
    assert isinstance(ingested, Ingested)
    result = (await s.store.messages.deliver(ingested, [target]))[0]
    if isinstance(result, StoreError):
        raise result
    return result


async def _undo(s: CommandContext, mailbox_id: str, uids: list[int]) -> None:
    """RFC 3502 §6.3.11: a failed MULTIAPPEND appends nothing; remove what went in."""
    try:
        await s.store.messages.store_flags(mailbox_id, uids, "add", ["\\Deleted"])
        await s.store.messages.expunge(mailbox_id, uids)
        s.changed(mailbox_id)  # the view took the messages in: it reads the removal
    except StoreError as exc:
        log.warning("could not undo a partial MULTIAPPEND: %r", exc)
