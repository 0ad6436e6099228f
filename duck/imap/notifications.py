"""The session's NOTIFY set (RFC 5465): which events it wants for which mailbox."""

from __future__ import annotations

import attrs

from duck.store import DELIMITER, INBOX

from .grammar.cmd_ext import NotifyGroup
from .grammar.cmd_mailbox import StatusItem
from .namespaces import in_other_namespace


@attrs.frozen
class NotifySet:
    """A session's NOTIFY SET: its event groups (the first that matches a mailbox
    decides its events, RFC 5465 §6)."""

    groups: tuple[NotifyGroup, ...]

    def events_for(self, path: str, *, selected: bool, subscribed: bool = False
                   ) -> frozenset[str]:
        """The events wanted for the mailbox at ``path`` (empty: none)."""
        for g in self.groups:
            if _matches(g, path, selected=selected, subscribed=subscribed):
                return frozenset(e.name for e in g.events or ())
        return frozenset()

    def beyond_selected(self) -> bool:
        """Whether a group with events is about mailboxes other than the selected one."""
        return any(g.filter not in ("SELECTED", "SELECTED-DELAYED") and g.events
                   for g in self.groups)


def _matches(g: NotifyGroup, path: str, *, selected: bool, subscribed: bool) -> bool:
    f = g.filter
    if f in ("SELECTED", "SELECTED-DELAYED"):
        return selected
    if f == "PERSONAL":
        # RFC 5465 §6: the personal namespace only, not other owners' mailboxes
        # (which the change feed also carries, named "Other Users/..." or "Shared/...").
        return not in_other_namespace(path)
    if f == "INBOXES":
        # Mail is delivered to INBOX only (no delivery rules move it elsewhere).
        return path == INBOX
    if f == "SUBSCRIBED":
        return subscribed
    names = [INBOX if m.upper() == INBOX else m for m in g.mailboxes]
    if f == "MAILBOXES":
        return path in names
    # SUBTREE: the mailboxes named and everything below them.
    return any(path == m or path.startswith(m + DELIMITER) for m in names)


def status_items(events: frozenset[str]) -> tuple[StatusItem, ...]:
    """The STATUS items the events imply for a mailbox that is not selected
    (RFC 5465 §5.1-5.3: MessageNew MESSAGES UIDNEXT UIDVALIDITY, MessageExpunge
    MESSAGES, FlagChange UIDVALIDITY HIGHESTMODSEQ; UNSEEN with any of them)."""
    items: list[StatusItem] = []

    def add(*more: StatusItem) -> None:
        items.extend(i for i in more if i not in items)

    if "MessageNew" in events:
        add(StatusItem.MESSAGES, StatusItem.UIDNEXT, StatusItem.UIDVALIDITY)
    if "MessageExpunge" in events:
        add(StatusItem.MESSAGES)
    if "FlagChange" in events:
        add(StatusItem.UIDVALIDITY, StatusItem.HIGHESTMODSEQ)
    if items:
        add(StatusItem.UNSEEN)
    return tuple(items)
