"""Hypothesis strategies for every command and response of duck.imap.grammar.

Shared by the property tests and by the atheris targets in ``fuzz/``.
"""

from __future__ import annotations

import datetime as dt

from hypothesis import strategies as st

import duck.imap.grammar as g
from duck.imap.grammar.lexer import ATOM_RE
from duck.imap.grammar.resp_codes import SIMPLE_CODES

ATOM_CHARS = "".join(chr(i) for i in range(0x21, 0x7F) if ATOM_RE.fullmatch(bytes([i])))
TAG_CHARS = ATOM_CHARS.replace("+", "") + "]"

tags = st.text(TAG_CHARS, min_size=1, max_size=8)
atoms = st.text(ATOM_CHARS, min_size=1, max_size=12)
upper_atoms = atoms.map(str.upper)
# Any text a client could mean; surrogates are excluded (they are not characters).
texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
nonempty_texts = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=20)
byte_strings = st.binary(max_size=40)
mailboxes = st.one_of(
    st.sampled_from(["INBOX", "inbox", "Drafts", "a/b", "&", "Entwürfe", "台北", "~x y", ""]),
    texts,
).map(g.normalize_mailbox)
patterns = st.one_of(st.sampled_from(["*", "%", "INBOX", "a/%", "&"]), texts)
system_flags = st.sampled_from(["\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft"])
keywords = atoms.filter(lambda a: a.upper() != "NIL")
flags = st.one_of(system_flags, keywords, atoms.map(lambda a: "\\" + a))
flag_tuples = st.lists(flags, max_size=4).map(tuple)
numbers = st.integers(1, 2**32 - 1)
small_numbers = st.integers(1, 5000)
numbers0 = st.integers(0, 2**32 - 1)
modseqs = st.integers(1, 2**63 - 1)
objectids = st.text("abcdefXYZ0123456789_-", min_size=1, max_size=20)

seq_numbers = st.one_of(st.just(g.STAR), numbers, small_numbers)
sequence_sets = st.one_of(
    st.lists(st.tuples(seq_numbers, seq_numbers), min_size=1, max_size=4).map(
        lambda items: g.SequenceSet(tuple(items))
    ),
    st.lists(seq_numbers, min_size=1, max_size=4).map(
        lambda ns: g.SequenceSet(tuple((n, n) for n in ns))
    ),
)
sequence_sets_or_saved = st.one_of(sequence_sets, st.just(g.SequenceSet.saved_result()))
zones = st.integers(-(23 * 60 + 59), 23 * 60 + 59).map(
    lambda m: dt.timezone(dt.timedelta(minutes=m))
)
date_times = st.builds(
    lambda d, tz: d.replace(microsecond=0, tzinfo=tz),
    st.datetimes(min_value=dt.datetime(1000, 1, 1), max_value=dt.datetime(9999, 12, 30)),
    zones,
)
dates = st.dates(min_value=dt.date(1, 1, 1))

# -- search keys -----------------------------------------------------------------

search_leaves = st.one_of(
    st.just(g.SearchAll()),
    st.builds(g.SearchFlag, st.one_of(system_flags, st.just("\\Recent"), keywords),
              st.booleans()),
    st.builds(g.SearchEnvelope, st.sampled_from(["FROM", "TO", "CC", "BCC", "SUBJECT"]), texts),
    st.builds(g.SearchHeader, texts, texts),
    st.builds(g.SearchText, st.sampled_from(["BODY", "TEXT"]), texts),
    st.builds(g.SearchDate, st.sampled_from(["BEFORE", "ON", "SINCE"]),
              st.sampled_from(g.DateField), dates),
    st.just(g.SearchSaveDateSupported()),
    st.builds(g.SearchSize, st.booleans(), st.integers(0, 2**63 - 1)),
    st.builds(g.SearchUid, sequence_sets_or_saved),
    st.builds(g.SearchSeq, sequence_sets_or_saved),
    st.builds(g.SearchModseq, st.integers(0, 2**63 - 1),
              st.none() | st.tuples(texts, st.sampled_from(["priv", "shared", "all"]))),
    st.builds(g.SearchWithin, st.booleans(), numbers),
    st.builds(g.SearchObjectId, st.sampled_from(["EMAILID", "THREADID"]), objectids),
)
search_keys = st.recursive(
    search_leaves,
    lambda inner: st.one_of(
        st.builds(g.SearchNot, inner),
        st.builds(g.SearchOr, inner, inner),
        st.lists(inner, min_size=1, max_size=3).map(lambda ks: g.SearchAnd(tuple(ks))),
    ),
    max_leaves=8,
)
search_programs = st.lists(search_keys, min_size=1, max_size=3).map(tuple)
search_returns = st.none() | st.lists(
    st.sampled_from(["MIN", "MAX", "ALL", "COUNT", "SAVE", "UPDATE", "CONTEXT"]), max_size=3,
    unique=True,
).map(tuple)
#: RFC 9394 partial-range: both ends positive or both negative, the smaller first.
partial_ranges = st.tuples(numbers, numbers).map(
    lambda t: (min(t), max(t))) | st.tuples(numbers, numbers).map(lambda t: (-min(t), -max(t)))
#: (return options, partial range) as Search and Sort take them.
returns_and_partial = st.one_of(
    search_returns.map(lambda r: (r, None)),
    st.tuples(st.lists(st.sampled_from(["MIN", "MAX", "COUNT", "ALL"]), max_size=2, unique=True),
              partial_ranges).map(lambda t: ((*t[0], "PARTIAL"), t[1])),
)
charsets = st.sampled_from(["UTF-8", "US-ASCII", "ISO-8859-1"])

# -- fetch items -----------------------------------------------------------------

section_parts = st.lists(st.integers(1, 50), max_size=3).map(tuple)
header_fields = st.lists(st.text(ATOM_CHARS, min_size=1, max_size=10), min_size=1, max_size=3)


@st.composite
def body_sections(draw: st.DrawFn, *, response: bool = False) -> g.BodySection:
    """A BODY[...] / BINARY[...] item; the response form has origin-only partials."""
    binary = draw(st.booleans())
    part = draw(section_parts)
    text = None
    fields: tuple[str, ...] = ()
    if not binary:
        choices = [None, *g.SectionText]
        if not part:
            choices.remove(g.SectionText.MIME)
        text = draw(st.sampled_from(choices))
        if text in (g.SectionText.HEADER_FIELDS, g.SectionText.HEADER_FIELDS_NOT):
            fields = tuple(draw(header_fields))
    partial = None
    if draw(st.booleans()):
        start = draw(numbers0)
        partial = (start, None) if response else (start, draw(numbers))
    peek = False if response else draw(st.booleans())
    return g.BodySection(part, text, fields, peek, binary, partial)


fetch_items = st.one_of(
    st.sampled_from(g.FetchAttr), body_sections(), st.builds(g.BinarySize, section_parts)
)

# -- commands --------------------------------------------------------------------

qresync = st.builds(
    g.QresyncParams, numbers, modseqs, st.none() | sequence_sets,
    st.none() | st.tuples(sequence_sets, sequence_sets),
)
list_select = st.sampled_from([
    (), ("SUBSCRIBED",), ("REMOTE",), ("SPECIAL-USE",), ("SUBSCRIBED", "RECURSIVEMATCH"),
    ("REMOTE", "SPECIAL-USE", "RECURSIVEMATCH"),
])
status_items = st.lists(st.sampled_from(g.StatusItem), min_size=1, max_size=4).map(tuple)
append_messages = st.one_of(
    st.builds(g.AppendMessage, byte_strings, flag_tuples, st.none() | date_times,
              st.booleans()),
    st.builds(lambda d, f: g.AppendMessage(d, f, utf8=True), byte_strings, flag_tuples),
    st.builds(
        g.AppendMessage,
        st.lists(
            st.one_of(st.builds(g.CatText, byte_strings, st.booleans()),
                      st.builds(g.CatUrl, texts)),
            min_size=1, max_size=3,
        ).map(lambda parts: g.Catenate(tuple(parts))),
        flag_tuples, st.none() | date_times,
    ),
)
metadata_entries = st.lists(
    st.text("abcdefghij0123456789-", min_size=1, max_size=8), min_size=1, max_size=3
).map(lambda segs: "/" + "/".join(segs))
notify_events = st.one_of(
    st.builds(g.NotifyEvent, st.just("MessageNew"),
              st.lists(fetch_items, max_size=2).map(tuple)),
    st.builds(g.NotifyEvent, st.sampled_from([
        "MessageExpunge", "FlagChange", "AnnotationChange", "MailboxName", "SubscriptionChange",
        "MailboxMetadataChange", "ServerMetadataChange",
    ])),
)


@st.composite
def notify_groups(draw: st.DrawFn) -> g.NotifyGroup:
    """One NOTIFY event group."""
    filt = draw(st.sampled_from(["SELECTED", "SELECTED-DELAYED", "INBOXES", "PERSONAL",
                                 "SUBSCRIBED", "SUBTREE", "MAILBOXES"]))
    boxes = draw(st.lists(mailboxes, min_size=1, max_size=3)) if filt in (
        "SUBTREE", "MAILBOXES") else []
    events = draw(st.none() | st.lists(notify_events, min_size=1, max_size=3).map(tuple))
    return g.NotifyGroup(filt, events, tuple(boxes))


@st.composite
def fetch_commands(draw: st.DrawFn) -> g.Fetch:
    """FETCH with consistent CONDSTORE/QRESYNC modifiers."""
    uid = draw(st.booleans())
    changed = draw(st.none() | st.integers(0, 2**63 - 1))
    vanished = uid and changed is not None and draw(st.booleans())
    return g.Fetch(draw(tags), draw(sequence_sets_or_saved),
                   tuple(draw(st.lists(fetch_items, min_size=1, max_size=5))), changed,
                   vanished, uid)


commands = st.one_of(
    st.builds(g.Capability, tags), st.builds(g.Noop, tags), st.builds(g.Logout, tags),
    st.builds(g.StartTLS, tags), st.builds(g.Namespace, tags), st.builds(g.Idle, tags),
    st.builds(g.Check, tags), st.builds(g.Close, tags), st.builds(g.Unselect, tags),
    st.builds(g.Unauthenticate, tags),
    st.builds(g.Authenticate, tags, atoms, st.none() | byte_strings),
    st.builds(g.Login, tags, texts, texts),
    st.builds(g.Enable, tags, st.lists(upper_atoms, min_size=1, max_size=3).map(tuple)),
    st.builds(g.Id, tags, st.none() | st.lists(st.tuples(texts, st.none() | texts), max_size=3)),
    st.builds(g.Compress, tags, st.just("DEFLATE")),
    st.builds(g.Select, tags, mailboxes, st.booleans(), st.none() | qresync),
    st.builds(g.Examine, tags, mailboxes, st.booleans(), st.none() | qresync),
    st.builds(g.Create, tags, mailboxes, flag_tuples),
    st.builds(g.Delete, tags, mailboxes), st.builds(g.Subscribe, tags, mailboxes),
    st.builds(g.Unsubscribe, tags, mailboxes), st.builds(g.GetQuotaRoot, tags, mailboxes),
    st.builds(g.Rename, tags, mailboxes, mailboxes),
    st.builds(
        g.List, tags, patterns, st.lists(patterns, min_size=1, max_size=3).map(tuple),
        list_select,
        st.lists(st.sampled_from(["SUBSCRIBED", "CHILDREN", "SPECIAL-USE", "MYRIGHTS"]),
                 max_size=2).map(tuple),
        st.none() | status_items,
    ),
    st.builds(g.Lsub, tags, patterns, patterns),
    st.builds(g.Status, tags, mailboxes, status_items),
    st.builds(g.Append, tags, mailboxes, st.lists(append_messages, min_size=1, max_size=3)),
    st.builds(g.Expunge, tags, st.none() | sequence_sets_or_saved),
    returns_and_partial.flatmap(lambda rp: st.builds(
        g.Search, tags, search_programs, st.none() | charsets, st.just(rp[0]), st.booleans(),
        st.just(rp[1]))),
    fetch_commands(),
    st.builds(g.Store, tags, sequence_sets_or_saved, st.sampled_from(g.StoreMode), flag_tuples,
              st.booleans(), st.none() | st.integers(0, 2**63 - 1), st.booleans()),
    st.builds(g.Copy, tags, sequence_sets_or_saved, mailboxes, st.booleans()),
    st.builds(g.Move, tags, sequence_sets_or_saved, mailboxes, st.booleans()),
    returns_and_partial.flatmap(lambda rp: st.builds(
        g.Sort, tags,
        st.lists(st.builds(g.SortCriterion, st.sampled_from(g.SortKey), st.booleans()),
                 min_size=1, max_size=3).map(tuple),
        charsets, search_programs, st.just(rp[0]), st.booleans(), st.just(rp[1]))),
    st.builds(g.Thread, tags, st.sampled_from(["REFERENCES", "ORDEREDSUBJECT", "REFS"]), charsets,
              search_programs, st.booleans()),
    st.builds(g.CancelUpdate, tags, st.lists(tags, min_size=1, max_size=3).map(tuple)),
    st.builds(g.GetQuota, tags, texts),
    st.builds(g.SetQuota, tags, texts,
              st.lists(st.tuples(st.sampled_from(["STORAGE", "MESSAGE", "MAILBOX"]),
                                 st.integers(0, 2**63 - 1)), max_size=3).map(tuple)),
    st.builds(g.GetMetadata, tags, mailboxes, st.lists(metadata_entries, min_size=1,
                                                       max_size=3).map(tuple),
              st.none() | numbers0, st.none() | st.sampled_from(["0", "1", "infinity"])),
    st.builds(g.SetMetadata, tags, mailboxes,
              st.lists(st.tuples(metadata_entries, st.none() | byte_strings), min_size=1,
                       max_size=3).map(tuple)),
    st.builds(g.SetAcl, tags, mailboxes, texts, texts),
    st.builds(g.DeleteAcl, tags, mailboxes, texts),
    st.builds(g.ListRights, tags, mailboxes, texts),
    st.builds(g.GetAcl, tags, mailboxes), st.builds(g.MyRights, tags, mailboxes),
    st.one_of(
        st.builds(g.Notify, tags, st.none()),
        st.builds(g.Notify, tags, st.lists(notify_groups(), min_size=1, max_size=2).map(tuple),
                  st.booleans()),
    ),
)

# -- responses -------------------------------------------------------------------

resp_texts = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\r\n\x00"), max_size=30
).filter(lambda t: not t.startswith("["))
code_texts = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\r\n\x00]"), min_size=1,
    max_size=10,
)
response_codes = st.one_of(
    st.sampled_from(sorted(SIMPLE_CODES)).map(g.Code),
    st.builds(g.PermanentFlags, st.lists(st.one_of(flags, st.just("\\*")), max_size=4)),
    st.builds(g.UidNext, numbers), st.builds(g.UidValidity, numbers),
    st.builds(g.Unseen, numbers), st.builds(g.HighestModseq, modseqs),
    st.builds(g.Modified, sequence_sets),
    st.builds(g.AppendUid, numbers, sequence_sets),
    st.builds(g.CopyUid, numbers, sequence_sets, sequence_sets),
    st.builds(g.CapabilityCode, st.lists(atoms, max_size=4)),
    st.builds(g.BadCharset, st.lists(nonempty_texts, max_size=3)),
    st.builds(g.MailboxId, objectids),
    st.builds(g.MetadataCode, st.sampled_from(["LONGENTRIES", "MAXSIZE"]), numbers0),
    st.builds(g.MetadataCode, st.sampled_from(["TOOMANY", "NOPRIVATE"])),
    st.builds(g.OtherCode, st.sampled_from(["X-FOO", "REFERRAL", "BADURL"]), code_texts),
)
addresses = st.builds(g.Address, st.none() | byte_strings, st.none() | byte_strings,
                      st.none() | byte_strings, st.none() | byte_strings)
address_lists = st.lists(addresses, max_size=3).map(tuple)
envelopes = st.builds(
    g.Envelope, st.none() | byte_strings, st.none() | byte_strings, address_lists, address_lists,
    address_lists, address_lists, address_lists, address_lists, st.none() | byte_strings,
    st.none() | byte_strings,
)
params = st.lists(st.tuples(texts, texts), max_size=2).map(tuple)
extension_values = st.recursive(
    st.none() | texts | st.integers(0, 2**63 - 1),
    lambda inner: st.lists(inner, min_size=1, max_size=3).map(tuple),
    max_leaves=4,
)


@st.composite
def body_exts(draw: st.DrawFn, *, multipart: bool) -> g.BodyExt:
    """BODYSTRUCTURE extension data for a single part or a multipart."""
    return g.BodyExt(
        md5=None if multipart else draw(st.none() | texts),
        params=draw(params) if multipart else (),
        disposition=draw(st.none() | st.builds(g.Disposition, texts, params)),
        language=draw(st.none() | st.lists(texts, min_size=1, max_size=2).map(tuple)),
        location=draw(st.none() | texts),
        extensions=tuple(draw(st.lists(extension_values, max_size=2))),
    )


def body_structures(*, extensible: bool) -> st.SearchStrategy[g.BodyStructure]:
    """BODY (no extension data) or BODYSTRUCTURE trees."""

    def exts(multipart: bool) -> st.SearchStrategy[g.BodyExt | None]:
        if not extensible:
            return st.none()
        return st.none() | body_exts(multipart=multipart)

    basic = st.builds(
        g.SinglePart, st.sampled_from(["APPLICATION", "IMAGE", "audio", "X-FOO"]), atoms, params,
        st.none() | texts, st.none() | texts, st.sampled_from(["7BIT", "BASE64", "x-y"]),
        numbers0, st.none(), st.none(), st.none(), exts(False),
    )
    text = st.builds(
        g.SinglePart, st.sampled_from(["TEXT", "text"]), atoms, params, st.none() | texts,
        st.none() | texts, st.sampled_from(["7BIT", "QUOTED-PRINTABLE"]), numbers0, numbers0,
        st.none(), st.none(), exts(False),
    )
    leaves = st.one_of(basic, text)

    def extend(inner: st.SearchStrategy[g.BodyStructure]) -> st.SearchStrategy[g.BodyStructure]:
        message = st.builds(
            g.SinglePart, st.just("MESSAGE"), st.sampled_from(["RFC822", "GLOBAL"]), params,
            st.none() | texts, st.none() | texts, st.just("7BIT"), numbers0, numbers0,
            envelopes, inner, exts(False),
        )
        multi = st.builds(g.MultiPart, st.lists(inner, min_size=1, max_size=3).map(tuple),
                          st.sampled_from(["MIXED", "ALTERNATIVE", "related"]), exts(True))
        return message | multi

    return st.recursive(leaves, extend, max_leaves=5)


def _fetch_value(key: g.FetchItem) -> st.SearchStrategy[object]:
    if isinstance(key, g.BodySection) or key in (
        g.FetchAttr.RFC822, g.FetchAttr.RFC822_HEADER, g.FetchAttr.RFC822_TEXT
    ):
        return st.none() | byte_strings
    if isinstance(key, g.BinarySize):
        return st.integers(0, 2**63 - 1)
    return {
        g.FetchAttr.FLAGS: flag_tuples,
        g.FetchAttr.UID: numbers,
        g.FetchAttr.RFC822_SIZE: st.integers(0, 2**63 - 1),
        g.FetchAttr.MODSEQ: st.integers(0, 2**63 - 1),
        g.FetchAttr.INTERNALDATE: date_times,
        g.FetchAttr.SAVEDATE: st.none() | date_times,
        g.FetchAttr.EMAILID: objectids,
        g.FetchAttr.THREADID: st.none() | objectids,
        g.FetchAttr.PREVIEW: st.none() | st.text(max_size=40),
        g.FetchAttr.ENVELOPE: envelopes,
        g.FetchAttr.BODY: body_structures(extensible=False),
        g.FetchAttr.BODYSTRUCTURE: body_structures(extensible=True),
    }[key]


@st.composite
def fetch_data(draw: st.DrawFn) -> g.FetchData:
    """A FETCH response with consistent key/value pairs."""
    keys = draw(st.lists(
        st.one_of(st.sampled_from(g.FetchAttr), body_sections(response=True),
                  st.builds(g.BinarySize, section_parts)),
        max_size=5,
    ))
    return g.FetchData(draw(numbers), tuple((k, draw(_fetch_value(k))) for k in keys))


@st.composite
def thread_nodes(draw: st.DrawFn, depth: int = 0) -> g.ThreadNode:
    """A valid thread-list: a chain, then none or at least two branches."""
    ids = draw(st.lists(small_numbers, max_size=3))
    children: list[g.ThreadNode] = []
    if depth < 3 and draw(st.booleans()):
        children = draw(st.lists(thread_nodes(depth + 1), min_size=2, max_size=3))
    if not ids and not children:
        ids = [draw(small_numbers)]
    return g.ThreadNode(tuple(ids), tuple(children))


delimiters = st.none() | st.sampled_from(["/", ".", "\\", '"', "|"])
namespace_groups = st.none() | st.lists(
    st.builds(g.NamespaceDesc, texts, delimiters,
              st.lists(st.tuples(texts, st.lists(texts, min_size=1, max_size=2).map(tuple)),
                       max_size=1).map(tuple)),
    min_size=1, max_size=2,
).map(tuple)

responses = st.one_of(
    st.builds(g.TaggedStatus, tags, st.sampled_from(["OK", "NO", "BAD"]),
              st.none() | response_codes, resp_texts),
    st.builds(g.UntaggedStatus, st.sampled_from(["OK", "NO", "BAD", "PREAUTH", "BYE"]),
              st.none() | response_codes, resp_texts),
    st.builds(g.Continuation, resp_texts, st.none() | response_codes),
    st.builds(g.CapabilityData, st.lists(atoms, max_size=4)),
    st.builds(g.EnabledData, st.lists(atoms, max_size=4)),
    st.builds(g.ListData, flag_tuples, delimiters, texts,
              st.lists(nonempty_texts, max_size=2).map(tuple), st.none() | texts),
    st.builds(g.LsubData, flag_tuples, delimiters, texts),
    st.builds(g.StatusData, texts, st.lists(
        st.one_of(
            st.tuples(st.sampled_from([i for i in g.StatusItem if i is not g.StatusItem.MAILBOXID]),
                      st.integers(0, 2**63 - 1)),
            st.tuples(st.just(g.StatusItem.MAILBOXID), objectids),
        ), max_size=4).map(tuple)),
    st.builds(g.SearchData, st.lists(numbers, max_size=5).map(tuple), st.none() | modseqs),
    st.builds(g.SortData, st.lists(numbers, max_size=5).map(tuple), st.none() | modseqs),
    st.builds(g.ESearchData, st.none() | tags, st.booleans(), st.none() | numbers,
              st.none() | numbers, st.none() | sequence_sets, st.none() | numbers0,
              st.none() | modseqs, st.none() | st.tuples(partial_ranges,
                                                         st.none() | sequence_sets),
              st.lists(st.tuples(numbers0, sequence_sets), max_size=2).map(tuple),
              st.lists(st.tuples(numbers0, sequence_sets), max_size=2).map(tuple)),
    st.builds(g.FlagsData, flag_tuples),
    st.builds(g.ExistsData, numbers0), st.builds(g.RecentData, numbers0),
    st.builds(g.ExpungeData, numbers),
    st.builds(g.VanishedData, sequence_sets, st.booleans()),
    fetch_data(),
    st.builds(g.ThreadData, st.lists(thread_nodes(), max_size=3).map(tuple)),
    st.builds(g.QuotaData, texts, st.lists(
        st.builds(g.QuotaResource, st.sampled_from(["STORAGE", "MESSAGE"]),
                  st.integers(0, 2**63 - 1), st.integers(0, 2**63 - 1)), max_size=2).map(tuple)),
    st.builds(g.QuotaRootData, texts, st.lists(texts, max_size=2).map(tuple)),
    st.builds(g.MetadataData, texts, st.lists(st.tuples(metadata_entries, st.none() | byte_strings),
                                              min_size=1, max_size=2).map(tuple)),
    st.builds(g.MetadataChanged, texts, st.lists(metadata_entries, min_size=1, max_size=2)),
    st.builds(g.NamespaceData, namespace_groups, namespace_groups, namespace_groups),
    st.builds(g.IdData, st.none() | st.lists(st.tuples(texts, st.none() | texts), max_size=3)),
    st.builds(g.AclData, texts, st.lists(st.tuples(texts, texts), max_size=3).map(tuple)),
    st.builds(g.ListRightsData, texts, texts, texts, st.lists(texts, max_size=3).map(tuple)),
    st.builds(g.MyRightsData, texts, texts),
)
