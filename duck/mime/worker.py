"""A process that indexes whole messages for another over a socket.

Why: indexing an APPENDed message (MIME structure, envelope, SEARCH text) is pure
Python CPU, ~0.4 ms for one of imaptest's messages, and the serving process's
event loop runs every session on one thread, so that work is done here, on
another core, and only its result crosses back (pickled).

The wire, both ways: a 4-byte little-endian length, then that many bytes of a
pickle. A request is ``(data, limits, extras)``; a reply is ``(True, events,
message, made)`` with what ``MessageIndexer.feed`` then ``close`` return for
``data``, or ``(False, error text)``.

``extras`` names functions of the indexed message (``"module:function"``) that the
parent would otherwise call itself on the reply, each returning a dict of bytes by
name: the store's renderings (IMAP's ENVELOPE and BODYSTRUCTURE wire forms, SORT's
keys), ~19% of the instructions of an APPEND in the parent (bench/instruction_costs.py),
spent here instead. ``made`` maps each to its result, or to None where it failed (the
parent then calls its own). This module imports nothing else of duck; the functions
are its parent's to name.

Only the parent that started this process writes to its socket (pickle is not for
untrusted input; the socket is a ``socketpair`` end inherited at start, never a
listener).

Run as ``python -m duck.mime.worker FD``.
"""

from __future__ import annotations

import importlib
import pickle
import socket
import sys
from collections.abc import Callable
from typing import Any

from duck.mime import collector
from duck.mime.indexer import MessageIndexer

#: Largest request accepted (a message over it is indexed by the caller itself).
MAX_REQUEST = 64 * 1024 * 1024
_LENGTH = 4


def frame(payload: bytes) -> bytes:
    """``payload`` with its length in front."""
    return len(payload).to_bytes(_LENGTH, "little") + payload


def index_request(payload: bytes) -> bytes:
    """The reply to one request (a pickled ``(data, limits, extras)``)."""
    data, limits, extras = pickle.loads(payload)
    try:
        indexer = MessageIndexer(limits)
        events = indexer.feed(data)
        closing, message = indexer.close()
    except Exception as exc:  # (a bug of the indexer: the caller indexes itself)
        return pickle.dumps((False, f"{type(exc).__name__}: {exc}"))
    made = {name: _extra(name, message) for name in extras}
    return pickle.dumps((True, events + closing, message, made),
                        protocol=pickle.HIGHEST_PROTOCOL)


_EXTRAS: dict[str, Callable[[Any], Any]] = {}


def _extra(name: str, message: Any) -> dict[str, bytes] | None:
    """What the function ``name`` returns for ``message``; None when it cannot be
    imported, fails or returns anything but bytes by name (the parent calls its
    own, and logs what fails there)."""
    try:
        function = _EXTRAS.get(name)
        if function is None:
            module, _, attribute = name.partition(":")
            function = _EXTRAS[name] = getattr(importlib.import_module(module), attribute)
        made = function(message)
    except Exception:
        return None
    if not (isinstance(made, dict) and all(
            isinstance(k, str) and isinstance(v, bytes) for k, v in made.items())):
        return None
    return made


def _read_exact(sock: socket.socket, n: int) -> bytes | None:
    chunks = bytearray()
    while len(chunks) < n:
        chunk = sock.recv(min(n - len(chunks), 1 << 20))
        if not chunk:
            return None
        chunks += chunk
    return bytes(chunks)


def serve(sock: socket.socket) -> None:
    """Answer requests on ``sock`` until the other end closes it."""
    while True:
        head = _read_exact(sock, _LENGTH)
        if head is None:
            return
        size = int.from_bytes(head, "little")
        if size > MAX_REQUEST:
            return
        payload = _read_exact(sock, size)
        if payload is None:
            return
        sock.sendall(frame(index_request(payload)))


def main(fd: int) -> None:
    """Serve the socket inherited as ``fd``, collecting as ``duck serve`` does."""
    collector.settle()
    serve(socket.socket(fileno=fd))


if __name__ == "__main__":
    main(int(sys.argv[1]))
