"""What CAPABILITY says, per connection state: exactly what works."""

from __future__ import annotations

#: Always announced.
BASE = ("IMAP4rev1", "IMAP4rev2", "LITERAL+", "SASL-IR", "ID", "ENABLE", "IDLE", "NAMESPACE")

#: Announced once authenticated (RFC 3501 §7.2.1 allows the list to change).
AUTHENTICATED = (
    "UIDPLUS", "MOVE", "UNSELECT", "CHILDREN", "SPECIAL-USE", "CREATE-SPECIAL-USE",
    "CONDSTORE", "QRESYNC",
    "QUOTA", "QUOTA=RES-STORAGE", "LIST-EXTENDED", "LIST-STATUS", "UTF8=ACCEPT",
    "MULTIAPPEND", "CATENATE", "ESEARCH", "SEARCHRES", "BINARY", "UNAUTHENTICATE",
    # RFC 8474 (EMAILID, THREADID, MAILBOXID), RFC 8438, RFC 8514, RFC 5032.
    "OBJECTID", "STATUS=SIZE", "SAVEDATE", "WITHIN",
    # RFC 8970 (FETCH PREVIEW).
    "PREVIEW",
    # RFC 5256, RFC 5957, RFC 5267 §3; draft-ietf-morg-inthread (REFS).
    "SORT", "SORT=DISPLAY", "THREAD=ORDEREDSUBJECT", "THREAD=REFERENCES", "THREAD=REFS",
    "ESORT",
    # RFC 9394 (SEARCH and SORT RETURN (PARTIAL first:last)), RFC 5267 §4 (RETURN (UPDATE)).
    "PARTIAL", "CONTEXT=SEARCH", "CONTEXT=SORT",
    # RFC 4978.
    "COMPRESS=DEFLATE",
    # RFC 5465.
    "NOTIFY",
    # RFC 5464 (METADATA implies METADATA-SERVER; both said for older clients).
    "METADATA", "METADATA-SERVER",
    # RFC 4314 (with the rights t, e, x and k), RFC 8440.
    "ACL", "RIGHTS=texk", "LIST-MYRIGHTS",
    # RFC 4467 (the INTERNAL mechanism), RFC 5524 (URLFETCH's BINARY, BODY and
    # BODYPARTSTRUCTURE parameters).
    "URLAUTH", "URLAUTH=BINARY",
)

#: What ENABLE accepts (RFC 5161): anything else is silently not enabled.
#: IMAP4rev2 (RFC 9051 §6.3.1): a server offering both versions speaks IMAP4rev1 until
#: the client enables IMAP4rev2.
ENABLEABLE = frozenset({"CONDSTORE", "QRESYNC", "UTF8=ACCEPT", "IMAP4rev2"})


def capabilities(
    *, authenticated: bool, tls: bool, login_allowed: bool, append_limit: int
) -> tuple[str, ...]:
    """The capability list for a connection in this state."""
    caps = list(BASE)
    if not authenticated:
        if not tls:
            caps.append("STARTTLS")
        if login_allowed:
            caps.extend(("AUTH=PLAIN", "AUTH=LOGIN"))
        else:
            # RFC 3501 §6.2.3: LOGINDISABLED while plaintext auth is refused.
            caps.append("LOGINDISABLED")
        # RFC 7677: SCRAM sends no password, so it needs no TLS to be safe to offer.
        caps.append("AUTH=SCRAM-SHA-256")
    else:
        caps.extend(AUTHENTICATED)
        caps.append(f"APPENDLIMIT={append_limit}")
    return tuple(caps)
