"""What every supported command and test takes: the validator's table.

Each entry names the tagged arguments (and the extension a tag needs), the
positional arguments, whether nested tests and a block are taken, and the
extension the command itself needs. Adding an extension is adding rows here and
a case in the interpreter.
"""

from __future__ import annotations

import attrs

#: Capabilities this implementation supports (``require`` checks against them).
EXTENSIONS = frozenset({
    "fileinto", "reject", "ereject", "envelope", "encoded-character",
    "comparator-i;octet", "comparator-i;ascii-casemap", "comparator-i;ascii-numeric",
    "imap4flags", "body", "variables", "relational", "subaddress", "date", "index",
    "vacation", "vacation-seconds", "include", "duplicate", "copy", "mailbox",
})

#: Comparators, and the capability each needs (RFC 5228 section 2.7.3: i;octet and
#: i;ascii-casemap are always there).
COMPARATORS = {
    "i;octet": None,
    "i;ascii-casemap": None,
    "i;ascii-numeric": "comparator-i;ascii-numeric",
}

#: Relational operators (RFC 5231 section 4).
RELATIONS = frozenset({"gt", "ge", "lt", "le", "eq", "ne"})

#: Date parts of the date and currentdate tests (RFC 5260 section 4.2).
DATE_PARTS = frozenset({"year", "month", "day", "date", "julian", "hour", "minute",
                        "second", "time", "iso8601", "std11", "zone", "weekday"})


@attrs.frozen
class TagSpec:
    """A tagged argument: its exclusive ``group`` (one tag of a group at most), what
    follows it (None: nothing, "string", "strings", "number") and its extension."""

    group: str
    takes: str | None = None
    extension: str | None = None


@attrs.frozen
class Spec:
    """One command or test."""

    tags: dict[str, TagSpec] = attrs.field(factory=dict)
    #: Kinds of the positional arguments: "string", "strings" or "number".
    positional: tuple[str, ...] = ()
    #: How many leading positional arguments may be left out (hasflag's variables).
    optional_leading: int = 0
    #: "none", "one" (a single test) or "list" (a parenthesised test list).
    tests: str = "none"
    #: True: a block is required; False: it must end with ';'.
    block: bool = False
    extension: str | None = None


_COMPARATOR = {"comparator": TagSpec("comparator", "string")}
_MATCH = {
    "is": TagSpec("match"),
    "contains": TagSpec("match"),
    "matches": TagSpec("match"),
    "value": TagSpec("match", "string", "relational"),
    "count": TagSpec("match", "string", "relational"),
}
_ADDRESS_PART = {
    "all": TagSpec("part"),
    "localpart": TagSpec("part"),
    "domain": TagSpec("part"),
    "user": TagSpec("part", None, "subaddress"),
    "detail": TagSpec("part", None, "subaddress"),
}
_INDEX = {"index": TagSpec("index", "number", "index"), "last": TagSpec("last", None, "index")}
_FLAGS = {"flags": TagSpec("flags", "strings", "imap4flags")}

COMMANDS: dict[str, Spec] = {
    "require": Spec(positional=("strings",)),
    "stop": Spec(),
    "if": Spec(tests="one", block=True),
    "elsif": Spec(tests="one", block=True),
    "else": Spec(block=True),
    "keep": Spec(tags=_FLAGS),
    "discard": Spec(),
    "redirect": Spec(tags={"copy": TagSpec("copy", None, "copy")}, positional=("string",)),
    "fileinto": Spec(
        tags={"copy": TagSpec("copy", None, "copy"), "create": TagSpec("create", None, "mailbox"),
              **_FLAGS},
        positional=("string",), extension="fileinto"),
    "reject": Spec(positional=("string",), extension="reject"),
    "ereject": Spec(positional=("string",), extension="ereject"),
    "vacation": Spec(
        tags={"days": TagSpec("period", "number"),
              "seconds": TagSpec("period", "number", "vacation-seconds"),
              "subject": TagSpec("subject", "string"),
              "from": TagSpec("from", "string"),
              "addresses": TagSpec("addresses", "strings"),
              "mime": TagSpec("mime"),
              "handle": TagSpec("handle", "string")},
        positional=("string",), extension="vacation"),
    "setflag": Spec(positional=("string", "strings"), optional_leading=1, extension="imap4flags"),
    "addflag": Spec(positional=("string", "strings"), optional_leading=1, extension="imap4flags"),
    "removeflag": Spec(positional=("string", "strings"), optional_leading=1,
                       extension="imap4flags"),
    "set": Spec(
        tags={name: TagSpec(name) for name in
              ("lower", "upper", "lowerfirst", "upperfirst", "quotewildcard", "length")},
        positional=("string", "string"), extension="variables"),
    "include": Spec(
        tags={"personal": TagSpec("location"), "global": TagSpec("location"),
              "once": TagSpec("once"), "optional": TagSpec("optional")},
        positional=("string",), extension="include"),
    "return": Spec(extension="include"),
    "global": Spec(positional=("strings",), extension="include"),
}

TESTS: dict[str, Spec] = {
    "true": Spec(),
    "false": Spec(),
    "not": Spec(tests="one"),
    "allof": Spec(tests="list"),
    "anyof": Spec(tests="list"),
    "exists": Spec(positional=("strings",)),
    "size": Spec(tags={"over": TagSpec("size"), "under": TagSpec("size")},
                 positional=("number",)),
    "header": Spec(tags={**_COMPARATOR, **_MATCH, **_INDEX},
                   positional=("strings", "strings")),
    "address": Spec(tags={**_COMPARATOR, **_MATCH, **_ADDRESS_PART, **_INDEX},
                    positional=("strings", "strings")),
    "envelope": Spec(tags={**_COMPARATOR, **_MATCH, **_ADDRESS_PART},
                     positional=("strings", "strings"), extension="envelope"),
    "body": Spec(tags={**_COMPARATOR, **_MATCH, "raw": TagSpec("transform"),
                       "content": TagSpec("transform", "strings"),
                       "text": TagSpec("transform")},
                 positional=("strings",), extension="body"),
    "string": Spec(tags={**_COMPARATOR, **_MATCH}, positional=("strings", "strings"),
                   extension="variables"),
    "hasflag": Spec(tags={**_COMPARATOR, **_MATCH}, positional=("strings", "strings"),
                    optional_leading=1, extension="imap4flags"),
    "date": Spec(tags={**_COMPARATOR, **_MATCH, **_INDEX,
                       "zone": TagSpec("zone", "string"), "originalzone": TagSpec("zone")},
                 positional=("string", "string", "strings"), extension="date"),
    "currentdate": Spec(tags={**_COMPARATOR, **_MATCH, "zone": TagSpec("zone", "string")},
                        positional=("string", "strings"), extension="date"),
    "duplicate": Spec(tags={"handle": TagSpec("handle", "string"),
                            "header": TagSpec("id", "string"),
                            "uniqueid": TagSpec("id", "string"),
                            "seconds": TagSpec("seconds", "number"),
                            "last": TagSpec("last")},
                      extension="duplicate"),
    "mailboxexists": Spec(positional=("strings",), extension="mailbox"),
}
