"""The selected mailbox as one session sees it: sequence numbers, flags, modseqs.

Loaded once at SELECT and then kept current by applying journal entries
(docs/architecture.md, "Sessions and round trips"). Sequence numbers only move when the
session is told: new messages wait in ``new`` until an EXISTS is sent, expunged
ones stay in ``uids`` until an EXPUNGE is sent, which happens only where RFC 3501
§7.4.1 allows it (never during FETCH, STORE or SEARCH).

Keywords follow the same rule: a client builds its list of the mailbox's flags from
FLAGS (RFC 3501 §7.2.6), so a keyword is announced in FLAGS (and PERMANENTFLAGS)
before the first FETCH that shows it. The view remembers what it announced; each
batch of responses showing flags asks ``announce`` first, which costs one set
comparison per message when nothing is new.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

import attrs

from duck.store import SYSTEM_FLAGS, JournalEntry, Mailbox, MessageSummary

from .grammar.fetch_items import FetchAttr
from .grammar.resp_codes import PermanentFlags
from .grammar.resp_fetch import FetchData
from .grammar.responses import (
    ExistsData,
    ExpungeData,
    FlagsData,
    RecentData,
    UntaggedStatus,
    VanishedData,
)
from .grammar.sequence import SequenceSet

Response = object


#: Flags any FLAGS response covers: the system flags, and \Recent (never a keyword).
_ALWAYS_DEFINED = frozenset((*SYSTEM_FLAGS, "\\Recent"))
#: UIDs a view keeps as claimed before it has them (``claim_later``).
MAX_CLAIMED = 1024


class InvalidSequence(ValueError):
    """A message sequence number beyond the mailbox (RFC 3501: BAD)."""


@attrs.define
class SelectedView:
    """One session's picture of its selected mailbox."""

    mailbox: Mailbox
    readonly: bool
    #: \Recent is kept and RECENT reported: not after ENABLE IMAP4rev2, which has
    #: neither (RFC 9051 Appendix E).
    track_recent: bool = True
    #: Announced messages in sequence order (seq n is uids[n-1]); includes messages
    #: expunged elsewhere whose EXPUNGE was not sent yet.
    uids: list[int] = attrs.Factory(list)
    flags: dict[int, tuple[str, ...]] = attrs.Factory(dict)
    modseqs: dict[int, int] = attrs.Factory(dict)
    recent: set[int] = attrs.Factory(set)
    #: UIDs whose \Recent this session claimed (its APPEND's) before the view had
    #: them: \Recent for it once the journal brings them (``take_claimed``).
    claimed: set[int] = attrs.Factory(set)
    #: Highest journal modseq applied.
    modseq: int = 0
    #: Expunged in the store, EXPUNGE not sent yet.
    expunged: set[int] = attrs.Factory(set)
    #: In the store, EXISTS not sent yet (ascending UIDs above every announced one).
    new: list[int] = attrs.Factory(list)
    #: Flags changed by someone else, FETCH not sent yet.
    changed: set[int] = attrs.Factory(set)
    #: The mailbox was deleted or renamed away by someone else.
    gone: bool = False
    #: UIDs that arrived or whose flags changed (anyone's change), while a search
    #: context (RFC 5267 §4.3) wants to know: None when none does.
    touched: set[int] | None = None
    announced_exists: int = 0
    announced_recent: int = 0
    #: The result of the last ``SEARCH RETURN (SAVE)`` (RFC 5182 §2.1), as UIDs:
    #: ``$`` names those of them that still exist. Empty at SELECT.
    saved: frozenset[int] = frozenset()
    #: Keywords announced in FLAGS, lowercased -> the spelling sent. It never
    #: shrinks while the mailbox is selected: a keyword a client has seen on a
    #: message must stay in every FLAGS it is sent (RFC 3501 §7.2.6).
    announced_keywords: dict[str, str] = attrs.Factory(dict)
    #: Every flag spelling the last FLAGS covers (system flags, \Recent, each
    #: spelling met of an announced keyword): flags need a look only when this is
    #: not a superset of them (keywords compare case-insensitively).
    _covered: set[str] = attrs.field(init=False, factory=lambda: set(_ALWAYS_DEFINED))
    #: The name the client selected it by (another owner's mailbox has a name in
    #: "Other Users/" or "Shared/" that is not its path).
    name: str = ""
    #: The user's rights when the mailbox is another owner's (RFC 4314); None for
    #: one's own, where every right is implicit and nothing is ever checked.
    rights: frozenset[str] | None = None
    #: This reader's own \Seen UIDs when the mailbox is another owner's (RFC 4314
    #: §5.4's advice): the stored \Seen is the owner's and is never shown.
    seen: set[int] | None = None
    #: The journal said the mailbox's ACL changed: rights are read again.
    acl_changed: bool = False

    @classmethod
    def load(
        cls, mailbox: Mailbox, summaries: Iterable[MessageSummary], *, readonly: bool,
        modseq: int, track_recent: bool = True, seen: set[int] | None = None,
    ) -> SelectedView:
        r"""A view from SELECT's one query; ``modseq`` is where the journal is read from;
        ``seen``: the reader's own \Seen set (another owner's mailbox)."""
        view = cls(mailbox, readonly, track_recent, modseq=modseq)
        view.seen = seen
        covered = view._covered
        for s in sorted(summaries, key=lambda s: s.uid):
            view.uids.append(s.uid)
            flags = view.flags[s.uid] = view.personal(s.uid, s.flags)
            view.modseqs[s.uid] = s.modseq
            if not covered.issuperset(flags):
                view._cover(flags)
        # What SELECT's FLAGS announces: every keyword on a message of the mailbox.
        view.announced_exists = len(view.uids)
        return view

    # -- numbers --------------------------------------------------------------------

    @property
    def exists(self) -> int:
        """Messages as the client knows them."""
        return len(self.uids)

    @property
    def uid_max(self) -> int:
        """The largest announced UID (0 when empty)."""
        return self.uids[-1] if self.uids else 0

    @property
    def highest_modseq(self) -> int:
        """HIGHESTMODSEQ as far as this session knows."""
        return max(self.modseq, self.mailbox.highest_modseq)

    def seq_of(self, uid: int) -> int | None:
        """The sequence number of an announced UID."""
        i = bisect.bisect_left(self.uids, uid)
        return i + 1 if i < len(self.uids) and self.uids[i] == uid else None

    def resolve_seqs(self, seqset: SequenceSet) -> list[int]:
        """UIDs of a message-sequence-number set (InvalidSequence beyond EXISTS)."""
        if seqset.saved:
            return self._saved_uids()
        n = len(self.uids)
        out: list[int] = []
        for lo, hi in seqset.ranges(n):
            if lo < 1 or hi > n:
                if n == 0 and any(0 in item for item in seqset.items):
                    continue  # "1:*" on an empty mailbox names nothing; not an error
                raise InvalidSequence(f"no message {hi if hi > n else lo} (EXISTS {n})")
            out.extend(self.uids[lo - 1 : hi])
        return out

    def resolve_uids(self, uidset: SequenceSet) -> list[int]:
        """Announced UIDs in a UID set (RFC 3501 §6.4.8: non-existent UIDs are ignored)."""
        if uidset.saved:
            return self._saved_uids()
        out: list[int] = []
        for lo, hi in uidset.ranges(self.uid_max):
            i = bisect.bisect_left(self.uids, lo)
            j = bisect.bisect_right(self.uids, hi)
            out.extend(self.uids[i:j])
        return out

    def _saved_uids(self) -> list[int]:
        # RFC 5182 §2.1: "$" names the saved messages that are not expunged, in
        # either numbering (an empty result is the empty set, not an error).
        saved = self.saved
        return [u for u in self.uids if u in saved and u not in self.expunged]

    def resolve(self, seqset: SequenceSet, *, uid: bool) -> list[int]:
        """UIDs named by a set in the command's numbering."""
        return self.resolve_uids(seqset) if uid else self.resolve_seqs(seqset)

    # -- changes ----------------------------------------------------------------------

    def apply(self, entries: Iterable[JournalEntry]) -> list[int]:
        """Apply journal entries; returns new UIDs whose flags are not known yet."""
        unknown: list[int] = []
        known = set(self.uids)
        for e in entries:
            if e.modseq <= self.modseq:
                continue
            self.modseq = e.modseq
            uid = e.uid
            if e.kind == "exists" and uid is not None:
                if uid in known or uid in self.new or uid <= self.uid_max:
                    continue
                bisect.insort(self.new, uid)
                self.modseqs[uid] = e.modseq
                if self.touched is not None:
                    self.touched.add(uid)
                if e.flags is not None:
                    self.flags[uid] = self.personal(uid, e.flags)
                else:
                    unknown.append(uid)
            elif e.kind == "expunge" and uid is not None:
                if uid in self.new:
                    self.new.remove(uid)
                    self.flags.pop(uid, None)
                elif uid in known:
                    self.expunged.add(uid)
                    self.changed.discard(uid)
            elif e.kind == "flags" and uid is not None:
                if self.modseqs.get(uid, 0) >= e.modseq:
                    continue  # our own STORE, already answered
                self.modseqs[uid] = e.modseq
                if e.flags is not None:
                    self.flags[uid] = self.personal(uid, e.flags)
                if uid in known and uid not in self.expunged:
                    self.changed.add(uid)
                    if self.touched is not None:
                        self.touched.add(uid)
            elif e.kind == "mailbox-delete":
                self.gone = True
            elif e.kind == "acl":
                self.acl_changed = True
            elif e.kind == "mailbox-rename" and e.path is not None:
                # Renamed (by anyone): the session keeps it selected under its new name.
                self.mailbox = attrs.evolve(self.mailbox, path=e.path)
        return [u for u in unknown if u in self.new]

    def set_flags(self, uid: int, flags: tuple[str, ...], modseq: int) -> None:
        """Record a flag change this session made (and reports itself)."""
        self.flags[uid] = self.personal(uid, flags)
        self.modseqs[uid] = max(modseq, self.modseqs.get(uid, 0))
        self.changed.discard(uid)
        if self.touched is not None:
            self.touched.add(uid)

    def personal(self, uid: int, flags: Iterable[str]) -> tuple[str, ...]:
        """Stored flags as this reader sees them: with their own \\Seen in place of
        the owner's when the mailbox is another owner's."""
        if self.seen is None:
            return tuple(flags)
        rest = tuple(f for f in flags if f != "\\Seen")
        return (*rest, "\\Seen") if uid in self.seen else rest

    def set_seen(self, uids: Iterable[int], present: bool) -> list[int]:
        """This reader's \\Seen set (or cleared) on ``uids``; those that changed."""
        assert self.seen is not None
        changed = []
        for uid in uids:
            if (uid in self.seen) == present or uid not in self.flags:
                continue
            if present:
                self.seen.add(uid)
            else:
                self.seen.discard(uid)
            rest = tuple(f for f in self.flags[uid] if f != "\\Seen")
            self.flags[uid] = (*rest, "\\Seen") if present else rest
            changed.append(uid)
            if self.touched is not None:
                self.touched.add(uid)
        return changed

    def remove_now(self, uids: Iterable[int]) -> list[int]:
        """Mark UIDs expunged by this session; the EXPUNGEs go out with ``updates``."""
        gone = [u for u in uids if self.seq_of(u) is not None]
        self.expunged.update(gone)
        return gone

    def updates(
        self, *, allow_expunge: bool, condstore: bool, uid_fetch: bool = True,
        vanished: bool = False,
    ) -> list[Response]:
        """Untagged responses for everything pending, in a correct order.

        EXPUNGEs first (highest sequence number first, so that each number is still
        valid when sent; one VANISHED instead once QRESYNC is on), then FLAGS and
        PERMANENTFLAGS if the new messages or the changed flags bring a keyword this
        session was not told of, then EXISTS/RECENT, then FETCH for flag changes.
        """
        out: list[Response] = []
        if allow_expunge and self.expunged:
            gone: list[int] = []
            for uid in sorted(self.expunged, reverse=True):
                seq = self.seq_of(uid)
                if seq is None:
                    continue
                del self.uids[seq - 1]
                self.flags.pop(uid, None)
                self.modseqs.pop(uid, None)
                self.recent.discard(uid)
                gone.append(uid)
                if not vanished:
                    out.append(ExpungeData(seq))
            if vanished and gone:
                out.append(VanishedData(SequenceSet.from_ints(gone)))
            self.expunged.clear()
            self.announced_exists = len(self.uids)
        added: list[int] = []
        if self.new:
            added = list(self.new)
            self.uids.extend(added)
            self.new.clear()
        shown: list[tuple[int, int]] = []
        for uid in sorted(self.changed):
            seq = self.seq_of(uid)
            if seq is None or uid in self.expunged:
                continue
            shown.append((seq, uid))
        self.changed.clear()
        # The new messages' keywords too, so that a client's first FETCH of them
        # finds every keyword already in its FLAGS.
        if added or shown:
            flags = self.flags
            out += self.announce([*(flags.get(u, ()) for u in added),
                                  *(flags.get(u, ()) for _, u in shown)])
        if len(self.uids) != self.announced_exists:
            out.append(ExistsData(len(self.uids)))
            self.announced_exists = len(self.uids)
            if self.track_recent:
                recent = len(self.recent)
                out.append(RecentData(recent))
                self.announced_recent = recent
        elif self.track_recent and len(self.recent) != self.announced_recent:
            # The count changed without an EXISTS (an EXPUNGE of a \Recent message):
            # RECENT is sent as the size changes (RFC 3501 §7.3.2), and a client that
            # keeps the last count it was told (imaptest's checkpoints sum them
            # over sessions) is not left with one that counts expunged messages.
            recent = len(self.recent)
            out.append(RecentData(recent))
            self.announced_recent = recent
        for seq, uid in shown:
            out.append(self.flag_fetch(seq, uid, condstore=condstore, with_uid=uid_fetch))
        return out

    def flag_fetch(self, seq: int, uid: int, *, condstore: bool, with_uid: bool) -> FetchData:
        """``* seq FETCH (UID u FLAGS (...) [MODSEQ (m)])`` from the view."""
        items: list[tuple[object, object]] = []
        if with_uid:
            items.append((FetchAttr.UID, uid))
        items.append((FetchAttr.FLAGS, self.flags_with_recent(uid)))
        if condstore:
            items.append((FetchAttr.MODSEQ, self.modseqs.get(uid, 1)))
        return FetchData(seq, items)

    def claim_later(self, uids: Iterable[int]) -> None:
        """\\Recent for this session, claimed before the view has these UIDs."""
        if len(self.claimed) >= MAX_CLAIMED:
            # (UIDs expunged before the view saw them stay here; a bound, not a
            # likely case: those claimed then are \Recent for no session.)
            self.claimed.clear()
        self.claimed.update(uids)

    def take_claimed(self) -> None:
        """The new messages this session claimed: \\Recent in its view."""
        if self.claimed and self.new:
            mine = [uid for uid in self.new if uid in self.claimed]
            self.recent.update(mine)
            self.claimed.difference_update(mine)

    def flags_with_recent(self, uid: int) -> tuple[str, ...]:
        """The flags as FETCH reports them: stored flags plus this session's \\Recent."""
        flags = self.flags.get(uid, ())
        return (*flags, "\\Recent") if uid in self.recent else flags

    def missing_uids(self, ranges: list[tuple[int, int]]) -> SequenceSet | None:
        """UIDs within ``ranges`` (clipped to the UIDs handed out) that no longer exist:
        what VANISHED (EARLIER) reports (RFC 7162 §3.2.5, §3.2.6). Cost is linear in
        the messages present, not in the width of the ranges."""
        top = max(self.uid_max, self.mailbox.uid_next - 1)
        out: list[tuple[int, int]] = []
        for lo, hi in ranges:
            lo, hi = max(lo, 1), min(hi, top)
            if lo > hi:
                continue
            i = bisect.bisect_left(self.uids, lo)
            j = bisect.bisect_right(self.uids, hi)
            nxt = lo
            for uid in self.uids[i:j]:
                if uid in self.expunged:
                    continue
                if uid > nxt:
                    out.append((nxt, uid - 1))
                nxt = uid + 1
            if nxt <= hi:
                out.append((nxt, hi))
        return SequenceSet(tuple(out)) if out else None

    # -- keywords ----------------------------------------------------------------------

    def defined_flags(self) -> tuple[str, ...]:
        """The FLAGS list: system flags, then every keyword announced (RFC 3501 §7.2.6)."""
        announced = self.announced_keywords
        return (*SYSTEM_FLAGS, *(announced[k] for k in sorted(announced)))

    def permanent_flags(self) -> tuple[str, ...]:
        """PERMANENTFLAGS: the defined flags and \\* (new keywords may be made); none
        when read-only (RFC 3501 §7.1)."""
        if self.readonly:
            return ()
        flags = (*self.defined_flags(), "\\*")
        if self.rights is None:
            return flags
        # RFC 4314 §4: on another owner's mailbox only the flags the user may set
        # (\\Seen with s, \\Deleted with t, the others and new keywords with w).
        need = {"\\Seen": "s", "\\Deleted": "t"}
        return tuple(f for f in flags if need.get(f, "w") in self.rights)

    def flag_definitions(self) -> list[Response]:
        """``* FLAGS (...)`` and ``* OK [PERMANENTFLAGS (...)]`` for the flags now defined."""
        return [FlagsData(self.defined_flags()),
                UntaggedStatus("OK", PermanentFlags(self.permanent_flags()),
                               "flags permitted")]

    def announce(self, flag_lists: Iterable[tuple[str, ...]]) -> list[Response]:
        """What to send ahead of responses showing these flag lists: FLAGS and
        PERMANENTFLAGS when one of them holds a keyword not announced yet (they are
        then counted as announced), else nothing. RFC 3501 §7.2.6: a client learns
        the mailbox's keywords from FLAGS, and imaptest holds a keyword shown before
        it was listed there for an error.

        One subset test per list when nothing is new; no database query."""
        covered = self._covered
        new = False
        for flags in flag_lists:
            if not covered.issuperset(flags):
                new = self._cover(flags) or new
        return self.flag_definitions() if new else []

    def _cover(self, flags: Iterable[str]) -> bool:
        """Count ``flags`` as announced; True when one was a keyword new to the session."""
        covered, announced = self._covered, self.announced_keywords
        new = False
        for flag in flags:
            if flag in covered:
                continue
            covered.add(flag)
            if flag.startswith("\\"):
                continue  # the store holds only system flags so spelled
            key = flag.lower()
            if key not in announced:
                announced[key] = flag
                new = True
        return new
