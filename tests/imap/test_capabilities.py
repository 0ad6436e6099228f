"""CAPABILITY says exactly what is served: every name it lists has a test of the
behaviour at the server level, and nothing is listed that is not in this table."""

from __future__ import annotations

from pathlib import Path

from duck.imap.capabilities import capabilities

HERE = Path(__file__).parent

#: Capability -> (test module, a command or response that module sends or checks).
TESTED: dict[str, tuple[str, str]] = {
    "IMAP4rev1": ("test_smoke.py", "SELECT"),
    "IMAP4rev2": ("test_imap4rev2.py", "ENABLE IMAP4rev2"),
    "LITERAL+": ("test_append.py", "+}"),
    "SASL-IR": ("test_auth.py", "AUTHENTICATE PLAIN "),
    "ID": ("test_select.py", 'ID ("name"'),
    "ENABLE": ("test_select.py", "ENABLE CONDSTORE"),
    "IDLE": ("test_idle.py", "IDLE"),
    "NAMESPACE": ("test_mailbox.py", "NAMESPACE"),
    "STARTTLS": ("test_auth.py", "STARTTLS"),
    "AUTH=PLAIN": ("test_auth.py", "AUTHENTICATE PLAIN"),
    "AUTH=LOGIN": ("test_auth.py", "AUTHENTICATE LOGIN"),
    "AUTH=SCRAM-SHA-256": ("test_accounts_auth.py", "SCRAM-SHA-256"),
    "LOGINDISABLED": ("test_auth.py", "LOGINDISABLED"),
    "UIDPLUS": ("test_append.py", "APPENDUID"),
    "MOVE": ("test_transfer.py", "MOVE"),
    "UNSELECT": ("test_select.py", "UNSELECT"),
    "CHILDREN": ("test_mailbox.py", "HasChildren"),
    "SPECIAL-USE": ("test_mailbox.py", "SPECIAL-USE"),
    "CREATE-SPECIAL-USE": ("test_mailbox.py", "(USE ("),
    "CONDSTORE": ("test_store.py", "UNCHANGEDSINCE"),
    "QRESYNC": ("test_qresync.py", "QRESYNC"),
    "QUOTA": ("test_quota.py", "GETQUOTAROOT"),
    "QUOTA=RES-STORAGE": ("test_quota.py", "STORAGE"),
    "LIST-EXTENDED": ("test_mailbox.py", "RECURSIVEMATCH"),
    "LIST-STATUS": ("test_mailbox.py", "RETURN (STATUS"),
    "UTF8=ACCEPT": ("test_select.py", "UTF8=ACCEPT"),
    "MULTIAPPEND": ("test_append.py", "MULTIAPPEND"),
    "CATENATE": ("test_catenate.py", "CATENATE"),
    "ESEARCH": ("test_search.py", "ESEARCH"),
    "SEARCHRES": ("test_searchres.py", "SAVE"),
    "BINARY": ("test_fetch.py", "BINARY"),
    "UNAUTHENTICATE": ("test_auth.py", "UNAUTHENTICATE"),
    "OBJECTID": ("test_objectid_and_friends.py", "EMAILID"),
    "STATUS=SIZE": ("test_objectid_and_friends.py", "SIZE"),
    "SAVEDATE": ("test_objectid_and_friends.py", "SAVEDATE"),
    "WITHIN": ("test_objectid_and_friends.py", "YOUNGER"),
    "PREVIEW": ("test_fetch.py", "PREVIEW"),
    "SORT": ("test_sort.py", "SORT"),
    "SORT=DISPLAY": ("test_sort.py", "DISPLAYFROM"),
    "THREAD=ORDEREDSUBJECT": ("test_sort.py", "ORDEREDSUBJECT"),
    "THREAD=REFERENCES": ("test_sort.py", "THREAD REFERENCES"),
    "THREAD=REFS": ("test_sort.py", "THREAD REFS"),
    "ESORT": ("test_sort.py", "SORT RETURN"),
    "PARTIAL": ("test_search.py", "PARTIAL"),
    "CONTEXT=SEARCH": ("test_searchcontext.py", "UPDATE"),
    "CONTEXT=SORT": ("test_searchcontext.py", "SORT RETURN"),
    "COMPRESS=DEFLATE": ("test_compress.py", "COMPRESS DEFLATE"),
    "NOTIFY": ("test_notify.py", "NOTIFY SET"),
    "METADATA": ("test_metadata.py", "GETMETADATA"),
    "METADATA-SERVER": ("test_metadata.py", "SETMETADATA"),
    "URLAUTH": ("test_urlauth.py", "URLFETCH"),
    "URLAUTH=BINARY": ("test_urlauth.py", "BODYPARTSTRUCTURE"),
    "ACL": ("test_acl.py", "SETACL"),
    "RIGHTS=texk": ("test_acl.py", "LISTRIGHTS"),
    "LIST-MYRIGHTS": ("test_acl.py", "RETURN (MYRIGHTS)"),
    "APPENDLIMIT": ("test_append.py", "APPENDLIMIT"),
}


def _advertised() -> set[str]:
    names: set[str] = set()
    for authenticated in (False, True):
        for tls in (False, True):
            for login in (False, True):
                caps = capabilities(authenticated=authenticated, tls=tls,
                                    login_allowed=login, append_limit=1000)
                names.update(c.split("=")[0] if c.startswith("APPENDLIMIT=") else c
                             for c in caps)
    return names


def test_every_capability_listed_has_a_test() -> None:
    assert _advertised() == set(TESTED), _advertised() ^ set(TESTED)
    for name, (module, needle) in TESTED.items():
        text = (HERE / module).read_text()
        assert needle in text, f"{name}: {module} never says {needle!r}"
