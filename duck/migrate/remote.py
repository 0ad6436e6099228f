"""A remote IMAP account read for ``duck import``, over TLS.

IMAPClient (imaplib underneath) in blocking calls; the importer runs them in worker
threads. Every selectable folder is read with EXAMINE (read-only: nothing on the
remote changes, no \\Seen is set), then ``UID FETCH (FLAGS INTERNALDATE
BODY.PEEK[])`` in batches. A message's import key is the folder's UIDVALIDITY and
its UID (RFC 3501 §2.3.1.1: that pair names one message for good); a folder whose
UIDVALIDITY changed is, as IMAP says, a new set of messages.
"""

from __future__ import annotations

import datetime as dt
import ssl
from collections.abc import Iterator, Sequence
from typing import Any

import attrs
from imapclient import IMAPClient

from .model import SourceMessage, clean_flags

#: Messages asked for in one UID FETCH.
FETCH_BATCH = 50


@attrs.frozen
class Account:
    """Where and who: the remote account's address and credentials."""

    host: str
    user: str
    password: str = attrs.field(repr=False)
    port: int = 993
    #: "implicit" (IMAPS) or "starttls".
    tls: str = "implicit"
    #: A CA file to trust (a private CA, a self-signed server); None: the system's.
    ca_file: str | None = None
    timeout: float = 60.0


def connect(account: Account) -> IMAPClient:
    """A logged-in connection (certificate and host name verified)."""
    context = ssl.create_default_context(cafile=account.ca_file)
    if account.tls == "implicit":
        client = IMAPClient(account.host, port=account.port, ssl=True,
                            ssl_context=context, timeout=account.timeout)
    elif account.tls == "starttls":
        client = IMAPClient(account.host, port=account.port, ssl=False,
                            timeout=account.timeout)
        client.starttls(context)
    else:
        raise ValueError(f"tls must be implicit or starttls, not {account.tls!r}")
    client.normalise_times = False  # INTERNALDATE keeps its zone
    client.login(account.user, account.password)
    return client


class RemoteFolder:
    """One selectable folder of the remote account."""

    def __init__(self, client: IMAPClient, name: str, path: str, base: str) -> None:
        self._client = client
        self.name = name
        self.path = path
        self._base = base
        self.source = f"{base}/{name}"
        self.uid_validity = 0

    def keys(self) -> list[str]:
        """``<uidvalidity>:<uid>`` of every message, by UID."""
        state = self._client.select_folder(self.name, readonly=True)
        self.uid_validity = int(state[b"UIDVALIDITY"])
        uids = sorted(self._client.search("ALL")) if state.get(b"EXISTS") else []
        return [f"{self.uid_validity}:{uid}" for uid in uids]

    def read(self, keys: Sequence[str]) -> Iterator[SourceMessage]:
        """The messages with these keys, fetched FETCH_BATCH at a time."""
        state = self._client.select_folder(self.name, readonly=True)
        validity = int(state[b"UIDVALIDITY"])
        uids = [int(k.split(":")[1]) for k in keys if k.startswith(f"{validity}:")]
        for i in range(0, len(uids), FETCH_BATCH):
            batch = uids[i:i + FETCH_BATCH]
            got = self._client.fetch(batch, [b"FLAGS", b"INTERNALDATE", b"BODY.PEEK[]"])
            for uid in batch:
                item = got.get(uid)
                if item is None or b"BODY[]" not in item:
                    continue  # expunged on the remote meanwhile
                yield SourceMessage(f"{validity}:{uid}", bytes(item[b"BODY[]"]),
                                    _flags(item.get(b"FLAGS", ())),
                                    _date(item.get(b"INTERNALDATE")))


def _flags(raw: Sequence[Any]) -> tuple[str, ...]:
    return clean_flags([f.decode("utf-8", "replace") if isinstance(f, bytes) else str(f)
                        for f in raw])


def _date(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
    return None


def folders(client: IMAPClient, account: Account) -> list[RemoteFolder]:
    """The selectable folders, INBOX first; remote separators become "/"."""
    base = f"imap:{account.user}@{account.host}:{account.port}"
    found: list[RemoteFolder] = []
    for flags, delimiter, name in client.list_folders():
        if any(f.lower() in (b"\\noselect", b"\\nonexistent") for f in flags):
            continue
        sep = delimiter.decode() if isinstance(delimiter, bytes) else delimiter
        text = name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)
        path = "INBOX" if text.upper() == "INBOX" else (
            text.replace(sep, "/") if sep and sep != "/" else text)
        found.append(RemoteFolder(client, text, path, base))
    found.sort(key=lambda f: (f.path != "INBOX", f.path))
    return found
