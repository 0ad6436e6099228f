"""Run a recipient's active script and turn its actions into delivery targets and
outbound mail (RFC 5228 section 2.10, RFC 5230, RFC 5429).

The message is never lost: a script that does not compile or fails while running
means "keep in INBOX" and the error is recorded on the script for the user to see;
a fileinto into a mailbox that does not exist (without ``:create``) goes to INBOX
(RFC 5228 section 4.1 allows that); a redirect that cannot be queued, or that
would loop, is replaced by a keep when nothing else stores the message.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict

import attrs

from .. import sieve
from ..outbound import autoreply
from ..store import (
    AlreadyExists,
    DeliveryTarget,
    InvalidInput,
    MailRules,
    NotFound,
    SieveScript,
    Store,
    StoreError,
    StoreUnavailable,
    normalize_flag,
    rights,
)
from . import generated
from .hooks import StoreHooks

log = logging.getLogger(__name__)

#: Compiled scripts kept in memory (by the hash of their source).
CACHE_SIZE = 512
#: Most octets of a message kept in memory for a script that needs the whole of it
#: (body tests, redirect); past it, a redirect is refused and the message kept.
MAX_MESSAGE_BUFFER = 16 * 1024 * 1024
#: Most octets of the header section kept for scripts that read only headers.
MAX_HEADER_BUFFER = 256 * 1024
#: Most flags a script may set on one copy (the store allows more).
MAX_FLAGS = 64


@attrs.frozen
class Loaded:
    """A recipient's active script, compiled (or why it does not compile), and the
    autoreply and forwarding resources."""

    script: SieveScript | None
    compiled: sieve.Script | None
    error: sieve.SieveError | None = None
    rules: MailRules = attrs.field(factory=MailRules)

    @property
    def needs_message(self) -> bool:
        """True when running may need the whole message (see sieve.Script)."""
        if self.rules.forwarding is not None:
            return True  # forwarding redirects
        return self.compiled is not None and self.compiled.needs_message


@attrs.frozen
class Recipient:
    """What the rules need of one recipient of a delivery."""

    user_id: str
    #: The address as given in RCPT TO (with a ``+detail``).
    address: str
    #: The normalised address (no detail).
    lookup: str
    #: Trace fields stored in front of this recipient's copy.
    prepend: bytes = b""


@attrs.frozen
class Plan:
    """What happens to one recipient's copy."""

    targets: tuple[DeliveryTarget, ...]
    #: The reject/ereject reason: the recipient refuses the message.
    refusal: str | None = None
    #: Short text for the delivery reply when nothing is stored ("discarded").
    note: str = ""


class Rules:
    """Sieve at delivery, for every process's deliveries (holds a compile cache)."""

    def __init__(self, store: Store, limits: sieve.Limits | None = None) -> None:
        self._store = store
        self.limits = limits or sieve.Limits()
        self._cache: OrderedDict[str, sieve.Script | sieve.SieveError] = OrderedDict()

    def compile(self, source: str) -> sieve.Script:
        """Compile (or take from the cache); SieveError when not valid."""
        key = hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()
        found = self._cache.get(key)
        if found is None:
            try:
                found = sieve.compile_script(source)
            except sieve.SieveError as exc:
                found = exc
            self._cache[key] = found
            if len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        if isinstance(found, sieve.SieveError):
            raise found
        return found

    async def load(self, user_ids: list[str],
                   known: dict[str, tuple[SieveScript | None, MailRules] | None] | None = None,
                   ) -> dict[str, Loaded]:
        """The active script (and autoreply/forwarding) of each user who has any
        (one worker-thread call, none when ``known`` has every user: what
        ``store.sieve.delivery_rules`` read for them, None for a user without)."""
        known = known or {}
        missing = [u for u in user_ids if u not in known]
        found = await self._store.sieve.for_delivery(missing) if missing else {}
        found.update((u, rules) for u, rules in known.items()
                     if rules is not None and u in user_ids)
        out: dict[str, Loaded] = {}
        for user_id, (script, rules) in found.items():
            if script is None:
                out[user_id] = Loaded(None, None, None, rules)
                continue
            try:
                out[user_id] = Loaded(script, self.compile(script.source), None, rules)
            except sieve.SieveError as exc:
                out[user_id] = Loaded(script, None, exc, rules)
        return out

    async def plan(self, recipient: Recipient, loaded: Loaded | None, message: bytes,
                   *, complete: bool, reverse_path: str, size: int) -> Plan:
        """Run the script for one recipient and carry out its outbound actions.

        ``message`` is the message as received (without ``recipient.prepend``);
        ``complete`` says whether it is all there or only its first part.
        """
        inbox = DeliveryTarget(user_id=recipient.user_id, mailbox_path="INBOX",
                               prepend=recipient.prepend)
        if loaded is None:
            return Plan((inbox,))
        data = recipient.prepend + message
        uses_body = loaded.compiled is not None and loaded.compiled.uses_body
        view = sieve.Message.from_bytes(
            data, envelope_from=reverse_path, envelope_to=recipient.address,
            size=size + len(recipient.prepend), with_body=uses_body)
        name = loaded.script.name if loaded.script is not None else ""
        if loaded.script is None:
            outcome = sieve.Outcome((sieve.Keep(implicit=True),))
        elif loaded.compiled is None:
            assert loaded.error is not None
            await self._record(recipient.user_id, name, loaded.error)
            outcome = sieve.Outcome((sieve.Keep(implicit=True),), loaded.error)
        else:
            outcome = await self._run(recipient, loaded.compiled, view, name)
            if outcome.error is not None:
                await self._record(recipient.user_id, name, outcome.error)
        own = generated.script(loaded.rules, view.now)
        if own is not None:
            # duck's own rules (autoreply, forwarding) run first; a failure of theirs
            # is logged and changes nothing for the user's script.
            ours = await self._run(recipient, self.compile(own), view, "")
            if ours.error is None:
                outcome = _merge(ours, outcome, loaded.rules)
        try:
            return await self._carry_out(recipient, outcome, message, complete=complete,
                                         reverse_path=reverse_path, script=name)
        except StoreUnavailable:
            raise
        except Exception:
            log.exception("sieve: the actions of script %r of user %s failed", name,
                          recipient.user_id)
            return Plan((inbox,))

    async def _run(self, recipient: Recipient, compiled: sieve.Script, view: sieve.Message,
                   name: str) -> sieve.Outcome:
        hooks = StoreHooks(self._store, recipient.user_id)
        try:
            return await sieve.run(compiled, view, hooks, self.limits, name)
        except StoreUnavailable:
            raise  # the whole delivery is retried by the MTA (LMTP 451)
        except Exception:
            # A bug must not lose mail: keep it, and say so in the log.
            log.exception("sieve: script %r of user %s crashed", name, recipient.user_id)
            return sieve.Outcome((sieve.Keep(implicit=True),), sieve.SieveRuntimeError(
                "internal error while running the script"))

    async def _record(self, user_id: str, name: str, error: sieve.SieveError) -> None:
        log.info("sieve: script %r of user %s failed: %s", name, user_id, error)
        try:
            await self._store.sieve.record_error(user_id, name, str(error), error.line)
        except StoreError:
            log.warning("sieve: could not record the error of script %r", name)

    async def _carry_out(self, recipient: Recipient, outcome: sieve.Outcome, message: bytes,
                         *, complete: bool, reverse_path: str, script: str) -> Plan:
        rejection = outcome.rejection
        if rejection is not None:
            return Plan((), refusal=rejection.reason)
        targets: list[DeliveryTarget] = []
        note = "discarded"
        kept_for_failure = False
        for action in outcome.actions:
            if isinstance(action, sieve.Keep):
                targets.append(self._target(recipient, "INBOX", action.flags))
            elif isinstance(action, sieve.FileInto):
                shared = await self._shared(recipient, action)
                if shared is not None:
                    targets.append(shared)
                    continue
                path = await self._mailbox(recipient.user_id, action.mailbox, action.create)
                targets.append(self._target(recipient, path, action.flags))
            elif isinstance(action, sieve.Redirect):
                note = "redirected"
                if not await self._redirect(recipient, action.address, message,
                                            complete=complete, reverse_path=reverse_path,
                                            script=script):
                    kept_for_failure = True
            elif isinstance(action, sieve.Vacation):
                await self._vacation(recipient, action, message, reverse_path)
        if kept_for_failure and not any(t.mailbox_path == "INBOX" for t in targets):
            targets.append(self._target(recipient, "INBOX", ()))
        # One copy per mailbox, whatever the fallbacks above did.
        unique: dict[tuple[str, str], DeliveryTarget] = {}
        for target in targets:
            # (Keyed by owner too: another owner's INBOX is not the recipient's.)
            unique.setdefault((target.user_id, target.mailbox_path.upper()
                               if target.mailbox_path.upper() == "INBOX"
                               else target.mailbox_path), target)
        return Plan(tuple(unique.values()), note=note)

    def _target(self, recipient: Recipient, path: str, flags: tuple[str, ...]
                ) -> DeliveryTarget:
        return DeliveryTarget(user_id=recipient.user_id, mailbox_path=path,
                              flags=_storable(flags), prepend=recipient.prepend)

    async def _shared(self, recipient: Recipient, action: sieve.FileInto
                      ) -> DeliveryTarget | None:
        """A fileinto naming another owner's mailbox (``Other Users/<owner>/...`` or
        ``Shared/...``): a target in that owner's tree (whose quota it counts
        toward) when the recipient may insert there (RFC 4314 ``i``); INBOX when not
        or when there is no such mailbox (RFC 5228 section 4.1's fallback; ``:create``
        makes nothing in another owner's tree). None for a personal name."""
        if rights.split_name(action.mailbox)[0] == "personal":
            return None
        try:
            mailbox, granted = await self._store.acl.target(recipient.user_id, action.mailbox)
        except NotFound:
            return self._target(recipient, "INBOX", action.flags)
        if "i" not in granted:
            return self._target(recipient, "INBOX", action.flags)
        # Flags the recipient may not set there are left out; \Seen would be the
        # owner's (each reader's own \Seen is kept apart), so it is never set.
        flags = tuple(f for f in _storable(action.flags) if f != "\\Seen"
                      and ("t" if f == "\\Deleted" else "w") in granted)
        return DeliveryTarget(user_id=mailbox.user_id, mailbox_path=mailbox.path,
                              flags=flags, prepend=recipient.prepend)

    async def _mailbox(self, user_id: str, name: str, create: bool) -> str:
        """The mailbox to file into: ``name`` if it exists (or was created), else INBOX."""
        try:
            await self._store.mailboxes.get(user_id, name)
            return name
        except NotFound:
            pass
        if not create:
            return "INBOX"
        try:
            await self._store.mailboxes.create(user_id, name)
        except AlreadyExists:
            pass
        except InvalidInput as exc:
            log.info("sieve: cannot create mailbox %r: %s", name, exc)
            return "INBOX"
        return name

    async def _redirect(self, recipient: Recipient, address: str, message: bytes, *,
                        complete: bool, reverse_path: str, script: str) -> bool:
        """Queue a redirect; False when it could not be (the message is then kept)."""
        if not complete:
            await self._record(recipient.user_id, script, sieve.SieveRuntimeError(
                "the message is too large to redirect"))
            return False
        why = autoreply.redirect_refusal(message, recipient.lookup)
        if why is not None:
            log.info("sieve: redirect of a message for %s to %s refused: %s",
                     recipient.lookup, address, why)
            return False
        copy = autoreply.redirect_copy(message, recipient.lookup)
        # The same delivery retried by the MTA queues its redirect once.
        key = hashlib.sha256(b"\0".join([
            message, recipient.user_id.encode(), address.lower().encode()])).hexdigest()
        try:
            await self._store.outbound.enqueue(reverse_path, [address], copy, kind="redirect",
                                               user_id=recipient.user_id, key=key)
        except StoreUnavailable:
            raise
        except StoreError as exc:
            log.warning("sieve: redirect to %s not queued: %s", address, exc)
            return False
        return True

    async def _vacation(self, recipient: Recipient, action: sieve.Vacation, message: bytes,
                        reverse_path: str) -> None:
        """Send a vacation reply when RFC 3834 / RFC 5230 allow it and this sender
        was not answered within the period."""
        own = [recipient.lookup, recipient.address, *action.addresses]
        if action.from_address:
            own.append(action.from_address)
        try:
            # Mail to any of the user's addresses counts as addressed to the user.
            own += [address for address, _ in await self._store.admin.addresses(
                recipient.user_id)]
        except StoreUnavailable:
            raise
        except StoreError:
            pass
        why = autoreply.reply_refusal(message, reverse_path, own)
        if why is not None:
            log.debug("sieve: no vacation reply to %s: %s", reverse_path, why)
            return
        handle = hashlib.sha256(action.handle.encode("utf-8", "surrogatepass")).hexdigest()
        try:
            if not await self._store.outbound.vacation_should_reply(
                    recipient.user_id, reverse_path, handle, action.period):
                return
            reply = _build_vacation(action, message, recipient.lookup, reverse_path)
            await self._store.outbound.enqueue("", [reverse_path], reply, kind="vacation",
                                               user_id=recipient.user_id)
        except StoreUnavailable:
            raise
        except (StoreError, ValueError) as exc:
            # A reply not sent loses no mail; the delivery goes on.
            log.warning("sieve: vacation reply to %s not queued: %s", reverse_path, exc)


def _merge(ours: sieve.Outcome, theirs: sieve.Outcome, rules: MailRules) -> sieve.Outcome:
    """duck's rules' actions, then the user script's: a rejection by the script
    wins (nothing is forwarded or answered); forwarding without ``keep`` drops the
    script's implicit keep (an explicit keep or fileinto still stores); of two
    vacation actions, the autoreply's is the one sent."""
    if theirs.rejection is not None:
        return theirs
    actions: list[sieve.Action] = [a for a in ours.actions if not isinstance(a, sieve.Keep)]
    drop_keep = (rules.forwarding is not None and not rules.forwarding.keep
                 and theirs.error is None)
    answered = any(isinstance(a, sieve.Vacation) for a in actions)
    for action in theirs.actions:
        if isinstance(action, sieve.Keep) and action.implicit and drop_keep:
            continue
        if isinstance(action, sieve.Vacation) and answered:
            continue
        actions.append(action)
    return sieve.Outcome(tuple(actions), theirs.error)


def _storable(flags: tuple[str, ...]) -> tuple[str, ...]:
    """The flags the store accepts (a script's flag it would refuse is dropped, not
    the copy), at most MAX_FLAGS."""
    out: list[str] = []
    for flag in flags:
        try:
            out.append(normalize_flag(flag))
        except StoreError:
            continue
        if len(out) >= MAX_FLAGS:
            break
    return tuple(out)


def _build_vacation(action: sieve.Vacation, message: bytes, user_address: str,
                    sender: str) -> bytes:
    from_address = action.from_address or user_address
    # :from may be a full "Name <addr>" (RFC 5230 section 4.4); the reply wants the address.
    if "<" in from_address and from_address.rstrip().endswith(">"):
        from_address = from_address[from_address.rindex("<") + 1:].rstrip().rstrip(">")
    if not action.mime:
        return autoreply.build_reply(message, from_address=from_address, to_address=sender,
                                     text=action.reason, subject=action.subject)
    # :mime: the reason is a whole MIME entity (its own Content-Type) that replaces the
    # body built for plain text (RFC 5230 section 4.7).
    built = autoreply.build_reply(message, from_address=from_address, to_address=sender,
                                  text="", subject=action.subject)
    head = built.split(b"\r\n\r\n", 1)[0]
    kept = [line for line in _fields(head)
            if line.split(b":", 1)[0].strip().lower()
            not in (b"content-type", b"content-transfer-encoding", b"mime-version")]
    entity = action.reason.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")
    if b"\r\n\r\n" not in entity:
        entity = b"\r\n" + entity
    return b"\r\n".join(kept) + b"\r\nMIME-Version: 1.0\r\n" + entity


def _fields(head: bytes) -> list[bytes]:
    fields: list[bytes] = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += b"\r\n" + line
        elif line:
            fields.append(line)
    return fields
