"""Mailbox management: CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE (RFC 3501 §6.3),
LIST/LSUB with CHILDREN (RFC 3348), SPECIAL-USE (RFC 6154), LIST-EXTENDED (RFC 5258)
and LIST-STATUS (RFC 5819); STATUS (§6.3.10)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from duck.store import DELIMITER, INBOX, Mailbox, StoreError, normalize_path, query, rights

from ..context import Done
from ..errors import no
from ..grammar.cmd_acl import MyRightsData
from ..grammar.cmd_mailbox import (
    Create,
    Delete,
    List,
    Lsub,
    Rename,
    Status,
    StatusItem,
    Subscribe,
    Unsubscribe,
)
from ..grammar.resp_codes import MailboxId
from ..grammar.responses import ListData, LsubData, StatusData
from ..namespaces import (
    ALL_TEXT,
    OTHER_USERS,
    SHARED,
    display,
    locate,
    open_mailbox,
    parent_rights,
    require,
    split,
)
from .registry import command
from .states import AUTHENTICATED

if TYPE_CHECKING:
    from ..context import CommandContext


def _strip(name: str) -> str:
    # RFC 3501 §6.3.3: a trailing delimiter only says the client means to create
    # inferior names; the mailbox is created without it.
    return name.rstrip(DELIMITER) or name


@command(Create, AUTHENTICATED)
async def create(s: CommandContext, cmd: Create) -> Done:
    """CREATE [USE (...)] (RFC 6154 §3: one special-use attribute at most here); the
    new mailbox's MAILBOXID in the tagged OK (RFC 8474 §4.1)."""
    assert s.user is not None
    if len(cmd.special_use) > 1:
        raise no("one special-use attribute per mailbox", "USEATTR")
    name = _strip(cmd.mailbox)
    if name.upper() == INBOX:
        raise no("INBOX always exists", "ALREADYEXISTS")
    place = await locate(s, name)
    if not place.own:
        # RFC 4314 §4: CREATE in another owner's tree needs k on the parent.
        require(await parent_rights(s, place), "k")
    made = await s.store.mailboxes.create(place.owner_id, place.path,
                                          cmd.special_use[0] if cmd.special_use else None)
    return Done("CREATE completed", MailboxId(made.id))


@command(Delete, AUTHENTICATED)
async def delete(s: CommandContext, cmd: Delete) -> None:
    """DELETE a mailbox and its messages; inferior names stay (RFC 3501 §6.3.4)."""
    assert s.user is not None
    if cmd.mailbox == INBOX:
        raise no("INBOX cannot be deleted", "CANNOT")
    place = await locate(s, cmd.mailbox)
    if not place.own:
        # RFC 4314 §4: DELETE needs x on the mailbox itself.
        mailbox, place, _ = await open_mailbox(s, cmd.mailbox, "x")
        if s.view is not None and s.view.mailbox.id == mailbox.id:
            s.unselect()
    elif (s.view is not None and s.view.rights is None
          and s.view.mailbox.path == cmd.mailbox):
        # Deleting the selected mailbox leaves it first (its view would be stale).
        s.unselect()
    await s.store.mailboxes.delete(place.owner_id, place.path)


@command(Rename, AUTHENTICATED)
async def rename(s: CommandContext, cmd: Rename) -> None:
    """RENAME, children included; renaming INBOX moves its messages (RFC 3501 §6.3.5)."""
    assert s.user is not None
    src = await locate(s, cmd.old)
    dst = await locate(s, _strip(cmd.new))
    if not (src.own and dst.own):
        # RFC 4314 §4: x on the mailbox and k on the new parent; within one
        # owner's tree only (a mailbox does not change owner by a RENAME).
        await open_mailbox(s, cmd.old, "x")
        if dst.owner_id != src.owner_id:
            raise no("a mailbox cannot be renamed into another owner's tree", "CANNOT")
        require(await parent_rights(s, dst), "k")
    await s.store.mailboxes.rename(src.owner_id, src.path, dst.path)


@command(Subscribe, AUTHENTICATED)
async def subscribe(s: CommandContext, cmd: Subscribe) -> None:
    """SUBSCRIBE a name, whether or not its mailbox exists (RFC 3501 §6.3.6)."""
    assert s.user is not None
    await s.store.mailboxes.set_subscribed(s.user.id, cmd.mailbox, True)


@command(Unsubscribe, AUTHENTICATED)
async def unsubscribe(s: CommandContext, cmd: Unsubscribe) -> None:
    """UNSUBSCRIBE."""
    assert s.user is not None
    await s.store.mailboxes.set_subscribed(s.user.id, cmd.mailbox, False)


def pattern_regex(reference: str, pattern: str) -> re.Pattern[str]:
    """The LIST pattern (reference prepended, RFC 3501 §6.3.8) as a regex: ``*``
    matches anything, ``%`` anything but the delimiter; INBOX is case-insensitive."""
    full = reference + pattern
    out = []
    if full[:5].upper() == INBOX and (len(full) == 5 or full[5] in (DELIMITER, "*", "%")):
        out.append("INBOX")
        full = full[5:]
    for ch in full:
        if ch == "*":
            out.append(".*")
        elif ch == "%":
            out.append(f"[^{re.escape(DELIMITER)}]*")
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out), re.DOTALL)


def _reaches_others(pattern: str) -> bool:
    """Whether a LIST pattern may match a name in "Other Users" or "Shared": its
    text before the first wildcard is a prefix of theirs, or starts with one."""
    cut = min((i for i, ch in enumerate(pattern) if ch in "*%"), default=len(pattern))
    literal = pattern[:cut]
    for root in (OTHER_USERS + DELIMITER, SHARED + DELIMITER):
        if root.startswith(literal) or literal.startswith(root):
            return True
    return False


def _ancestors(path: str) -> list[str]:
    parts = path.split(DELIMITER)
    return [DELIMITER.join(parts[:i]) for i in range(1, len(parts))]


def _order(path: str) -> tuple[int, str]:
    return (0 if path == INBOX else 1, path)


async def _status_items(s: CommandContext, mailbox: Mailbox, items: tuple[StatusItem, ...],
                        *, own: bool = True) -> list[tuple[StatusItem, int | str]]:
    out: list[tuple[StatusItem, int | str]] = []
    for item in items:
        if item is StatusItem.MESSAGES:
            out.append((item, mailbox.message_count))
        elif item is StatusItem.RECENT:
            # RFC 3501 §6.3.10: the messages the next SELECT would see as \Recent.
            out.append((item, await s.store.messages.count_recent(mailbox)))
        elif item is StatusItem.UIDNEXT:
            out.append((item, mailbox.uid_next))
        elif item is StatusItem.UIDVALIDITY:
            out.append((item, mailbox.uid_validity))
        elif item is StatusItem.UNSEEN:
            out.append((item, mailbox.unseen_count if own
                        else await _reader_unseen(s, mailbox)))
        elif item is StatusItem.HIGHESTMODSEQ:
            await s.enable_condstore()  # RFC 7162 §3.1
            out.append((item, mailbox.highest_modseq))
        elif item is StatusItem.SIZE:
            out.append((item, mailbox.size))
        elif item is StatusItem.APPENDLIMIT:
            out.append((item, s.config.max_message_size))
        elif item is StatusItem.MAILBOXID:
            out.append((item, mailbox.id))
        elif item is StatusItem.DELETED:
            deleted = await s.store.messages.search(mailbox.id, query.Flag("\\Deleted"))
            out.append((item, len(deleted)))
        else:
            raise no(f"STATUS {item.value} is not supported", "CANNOT")
    return out


async def _reader_unseen(s: CommandContext, mailbox: Mailbox) -> int:
    """UNSEEN of another owner's mailbox for this reader, whose \\Seen is their own
    (two reads: the mailbox's UIDs and the reader's set)."""
    assert s.user is not None
    seen = await s.store.acl.seen(mailbox.id, s.user.id)
    return sum(1 for m in await s.store.messages.view(mailbox.id, mailbox) if m.uid not in seen)


#: What the selected mailbox's view answers for STATUS exactly as the counters
#: would. Not UIDNEXT (an expunged message's UID is gone from the view, not from
#: the counter), HIGHESTMODSEQ (moved by changes the journal does not list) or SIZE.
_FROM_VIEW = frozenset((StatusItem.MESSAGES, StatusItem.UNSEEN, StatusItem.RECENT,
                        StatusItem.UIDVALIDITY))
#: Largest view counted for UNSEEN instead of a read (~0.1 us a message).
VIEW_STATUS_MAX = 5_000


def _status_from_view(s: CommandContext, cmd: Status) -> list[tuple[StatusItem, int]] | None:
    """STATUS of the selected mailbox from the session's view, when the view is as
    current as a read would make it: one's own, writable mailbox, no wake-up
    pending and the journal read. None when it must be read.

    A wake-up is pending for every change committed in this process since the
    view's last journal read (the writer publishes before it answers), and for
    another process's within the change stream's delay, as for every other view
    answer (FETCH FLAGS, SEARCH). The RECENT a read gives is the messages above
    the recent mark, and a writable view has claimed every message it knows (at
    SELECT and at each journal read): none. (A view that is behind is not caught
    up first: its journal read would claim what a read still counts as RECENT.)"""
    view = s.view
    if (view is None or view.readonly or view.rights is not None or view.gone
            or not _FROM_VIEW.issuperset(cmd.items) or view.exists > VIEW_STATUS_MAX
            or split(cmd.mailbox)[0] != "personal"):
        return None
    if s.view_behind:
        return None
    try:
        if normalize_path(cmd.mailbox) != view.mailbox.path:
            return None
    except StoreError:
        return None
    expunged = view.expunged
    messages = unseen = 0
    for uid in (*view.uids, *view.new):
        if uid in expunged:
            continue
        flags = view.flags.get(uid)
        if flags is None:
            return None
        messages += 1
        unseen += "\\Seen" not in flags
    values = {StatusItem.MESSAGES: messages, StatusItem.UNSEEN: unseen,
              StatusItem.RECENT: 0, StatusItem.UIDVALIDITY: view.mailbox.uid_validity}
    return [(item, values[item]) for item in cmd.items]


@command(Status, AUTHENTICATED)
async def status(s: CommandContext, cmd: Status) -> None:
    """STATUS from the mailbox's counters (one read), or of the selected mailbox
    from the session's view (none)."""
    assert s.user is not None
    known = _status_from_view(s, cmd)
    if known is not None:
        await s.send(StatusData(cmd.mailbox, known))
        return
    # RFC 4314 §4: STATUS needs r.
    mailbox, place, _ = await open_mailbox(s, cmd.mailbox, "r")
    await s.send(StatusData(cmd.mailbox, await _status_items(s, mailbox, cmd.items,
                                                             own=place.own)))


def _nonexistent(path: str, subscribed: set[str]) -> bool:
    """Whether an extended LIST calls a name it lists without a mailbox
    \\NonExistent (RFC 5258 §3.4, which implies \\Noselect, not repeated) rather
    than \\Noselect.

    A personal name: always. In "Other Users" and "Shared", a namespace or user node
    is no mailbox at all (RFC 2342 §5: \\Noselect), and so is a hierarchy level
    listed above a mailbox shared with the user. A subscribed name of a mailbox
    there is one RFC 5258 §3 lists because it "meets the selection criteria" but
    "does not refer to an existing mailbox": \\NonExistent, said alike whether the
    mailbox is missing or merely not shared with the user (RFC 4314 §4: a mailbox
    without l is answered as one that does not exist)."""
    kind, _, mailbox_path = split(path)
    if kind == "personal":
        return True
    return bool(mailbox_path) and path in subscribed


@command(List, AUTHENTICATED)
async def list_(s: CommandContext, cmd: List) -> None:
    """LIST, basic and extended (RFC 5258: SUBSCRIBED names whether or not their
    mailbox exists; RECURSIVEMATCH's CHILDINFO)."""
    assert s.user is not None
    if cmd.patterns == ("",) and not cmd.extended:
        # RFC 3501 §6.3.8: the hierarchy delimiter and root of the reference.
        await s.send(ListData(("\\Noselect",), DELIMITER, ""))
        return
    # (Without RETURN (STATUS), names and attributes alone: the list this process
    # last read may answer, when no change of the user's mailboxes came since.)
    mailboxes = await s.store.mailboxes.list(s.user.id, reuse=cmd.return_status is None)
    by_path = {m.path: m for m in mailboxes}
    select = set(cmd.selection_options)
    returns = set(cmd.return_options)
    regexes = [pattern_regex(cmd.reference, p) for p in cmd.patterns if p]
    #: Rights on the listed mailboxes of other owners (one's own: all).
    granted: dict[str, frozenset[str]] = {}
    if any(_reaches_others(cmd.reference + p) for p in cmd.patterns if p):
        # Only a pattern that can match "Other Users/..." or "Shared/..." asks
        # what is shared with the user (a list of one's own asks nothing more).
        for shared in await s.store.acl.shared_with(s.user.id, s.user.username):
            name = display(shared.owner, shared.mailbox.path)
            by_path[name] = shared.mailbox
            granted[name] = shared.rights

    def matches(path: str) -> bool:
        return any(r.fullmatch(path) for r in regexes)

    subscribed: set[str] = set()
    if "SUBSCRIBED" in select or "SUBSCRIBED" in returns:
        subscribed = set(await s.store.mailboxes.subscriptions(s.user.id))
    candidates = set(by_path) | subscribed
    for path in list(candidates):
        candidates.update(_ancestors(path))
    listed = {p for p in candidates if matches(p)}
    responses: list[Any] = []
    for path in sorted(listed, key=_order):
        mb = by_path.get(path)
        childinfo: tuple[str, ...] = ()
        if "SUBSCRIBED" in select and path not in subscribed:
            # RFC 5258 §3.5: with RECURSIVEMATCH a name that is not subscribed is
            # listed for its subscribed descendants the patterns leave out, with
            # CHILDINFO ("SUBSCRIBED").
            below = path + DELIMITER
            if "RECURSIVEMATCH" in select and any(
                    p.startswith(below) and p not in listed for p in subscribed):
                childinfo = ("SUBSCRIBED",)
            else:
                continue
        if "SPECIAL-USE" in select and (mb is None or not mb.special_use):
            continue
        attrs_: list[str] = []
        if mb is None:
            attrs_.append("\\NonExistent" if cmd.extended and _nonexistent(path, subscribed)
                          else "\\Noselect")
        prefix = path + DELIMITER
        if mb is not None or not cmd.extended or "CHILDREN" in returns:
            has_children = any(p.startswith(prefix) for p in by_path)
            attrs_.append("\\HasChildren" if has_children else "\\HasNoChildren")
        if mb is not None and mb.special_use and (
            not cmd.extended or "SPECIAL-USE" in returns or "SPECIAL-USE" in select
            or not returns
        ):
            attrs_.append(mb.special_use)
        if path in subscribed:
            attrs_.append("\\Subscribed")
        responses.append(ListData(tuple(attrs_), DELIMITER, path, childinfo))
        mine = path not in granted
        if "MYRIGHTS" in returns and mb is not None:
            # RFC 8440: MYRIGHTS of each listed mailbox, after its LIST response.
            responses.append(MyRightsData(path, ALL_TEXT if mine
                                          else rights.render(granted[path])))
        # RFC 5819 §2 (with RFC 4314): STATUS only where the user has r.
        if cmd.return_status is not None and mb is not None and (mine or "r" in granted[path]):
            responses.append(StatusData(path, await _status_items(s, mb, cmd.return_status,
                                                                  own=mine)))
    if responses:
        await s.send(*responses)


async def mailbox_list_data(s: CommandContext, mailbox: Mailbox, name: str) -> ListData:
    """What ``LIST "" <name>`` says of an existing mailbox, ``name`` as the client
    calls it (RFC 9051 §6.3.2 wants it in SELECT's answer, its attributes accurate):
    children and special use from its owner's tree (another user's, when shared)."""
    mailboxes = await s.store.mailboxes.list(mailbox.user_id)
    prefix = mailbox.path + DELIMITER
    attrs_ = ["\\HasChildren" if any(m.path.startswith(prefix) for m in mailboxes)
              else "\\HasNoChildren"]
    if mailbox.special_use:
        attrs_.append(mailbox.special_use)
    return ListData(tuple(attrs_), DELIMITER, name)


@command(Lsub, AUTHENTICATED)
async def lsub(s: CommandContext, cmd: Lsub) -> None:
    """LSUB: subscribed names; an unsubscribed parent matched by ``%`` is \\Noselect."""
    assert s.user is not None
    regex = pattern_regex(cmd.reference, cmd.pattern)
    subscribed = set(await s.store.mailboxes.subscriptions(s.user.id))
    candidates = set(subscribed)
    if "%" in cmd.pattern:
        for path in subscribed:
            candidates.update(_ancestors(path))
    responses = []
    for path in sorted(candidates, key=_order):
        if regex.fullmatch(path):
            flags = () if path in subscribed else ("\\Noselect",)
            responses.append(LsubData(flags, DELIMITER, path))
    if responses:
        await s.send(*responses)


