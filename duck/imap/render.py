"""IMAP renderings: ENVELOPE, BODY and BODYSTRUCTURE serialized once per message.

The store keeps opaque per-message renderings (``store.messages.register_renderer``)
and never looks inside; this module says what IMAP keeps there. Delivery renders
every message once; a message stored before (or by a process that did not
register) is rendered at its first FETCH and the result saved in bulk.

A rendering name carries the format version: change it when the format changes
and old renderings are simply not found. The UTF-8 form (for UTF8=ACCEPT
sessions, RFC 6855, where 8-bit strings may be quoted) is kept only when it
differs from the plain one, which is valid in every session.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING

from duck.mime.model import Envelope as MimeEnvelope
from duck.mime.model import IndexedMessage, Part

from . import convert
from .grammar.encode import Preencoded
from .grammar.fetch_items import FetchAttr
from .grammar.resp_fetch import preencoder, render

if TYPE_CHECKING:
    from duck.store import Store

#: FETCH key -> (plain rendering name, UTF-8 rendering name).
NAMES: dict[FetchAttr, tuple[str, str]] = {
    FetchAttr.ENVELOPE: ("imap_env1", "imap_env1u"),
    FetchAttr.BODY: ("imap_body1", "imap_body1u"),
    FetchAttr.BODYSTRUCTURE: ("imap_bs1", "imap_bs1u"),
}
#: The store fields a key's value is computed from when there is no rendering.
SOURCE_FIELD = {FetchAttr.ENVELOPE: "envelope", FetchAttr.BODY: "structure",
                FetchAttr.BODYSTRUCTURE: "structure"}


def value_of(key: FetchAttr, envelope: MimeEnvelope | None, structure: Part | None) -> object:
    """The grammar value of ``key`` from the MIME model."""
    if key is FetchAttr.ENVELOPE:
        assert envelope is not None
        return convert.envelope(envelope)
    assert structure is not None
    return convert.body(structure, extensible=key is FetchAttr.BODYSTRUCTURE)


def renderings(key: FetchAttr, envelope: MimeEnvelope | None,
               structure: Part | None) -> dict[str, bytes]:
    """The renderings of ``key`` (the UTF-8 one only when it differs)."""
    plain_name, utf8_name = NAMES[key]
    value = value_of(key, envelope, structure)
    plain = render(key, value, utf8=False)  # type: ignore[arg-type]
    out = {plain_name: plain}
    # Only an 8-bit string is written otherwise in a UTF-8 session (quoted there,
    # a literal here, whose octets then show in ``plain``): an ASCII rendering is
    # both. (Rendering twice was ~9% of an APPEND's CPU.)
    if not plain.isascii():
        utf8 = render(key, value, utf8=True)  # type: ignore[arg-type]
        if utf8 != plain:
            out[utf8_name] = utf8
    return out


def lookup(key: FetchAttr, stored: dict[str, bytes] | None, *, utf8: bool) -> Preencoded | None:
    """The pre-encoded value of ``key`` among a message's renderings, if there (and
    intact: damaged bytes count as missing)."""
    return lookup_for(key, utf8=utf8)(stored)


@functools.cache
def lookup_for(key: FetchAttr, *, utf8: bool
               ) -> Callable[[dict[str, bytes] | None], Preencoded | None]:
    """``lookup`` of one key for many messages (the per-key work done once in the
    process: there are six of them, keys by utf8)."""
    plain_name, utf8_name = NAMES[key]
    check = preencoder(key)

    def find(stored: dict[str, bytes] | None) -> Preencoded | None:
        if not stored:
            return None
        data = stored.get(utf8_name) if utf8 else None
        if data is None:
            data = stored.get(plain_name)
        return None if data is None else check(data)

    return find


def _renderer(key: FetchAttr, utf8: bool) -> Callable[[IndexedMessage], bytes | None]:
    plain_name, utf8_name = NAMES[key]

    def renderer(message: IndexedMessage) -> bytes | None:
        # The plain and the UTF-8 renderer of a key are called one after the other
        # on the same message: the second takes what the first made. (The message
        # itself is held, not its id, which a later message could reuse.)
        held, out = _LAST.get(key, (None, None))
        if held is not message or out is None:
            out = renderings(key, message.envelope, message.root)
            _LAST[key] = (message, out)
        return out.get(utf8_name if utf8 else plain_name)

    return renderer


#: The last message each key was rendered for, and its renderings.
_LAST: dict[FetchAttr, tuple[IndexedMessage, dict[str, bytes]]] = {}


def render_all(message: IndexedMessage) -> dict[str, bytes]:
    """Every rendering of ``message`` this module registers, by name, as its
    renderers return them (a UTF-8 one only where it differs): made by the parse
    worker that indexes the message, off the serving loop (``register``)."""
    out: dict[str, bytes] = {}
    for key in NAMES:
        out.update(renderings(key, message.envelope, message.root))
    return out


def register(store: Store) -> None:
    """Have the store render every message delivered from now on (idempotent)."""
    portable = f"{__name__}:{render_all.__name__}"
    for key in NAMES:
        plain_name, utf8_name = NAMES[key]
        store.messages.register_renderer(plain_name, _renderer(key, False), portable)
        store.messages.register_renderer(utf8_name, _renderer(key, True), portable)
