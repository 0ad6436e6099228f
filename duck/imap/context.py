"""What a command handler works with: the session as commands see it, and how a
command completes.

It sits below both ``session.py`` (which dispatches) and ``commands/`` (which
handle), so that neither imports the other's module to share these.
"""

from __future__ import annotations

import enum
import ssl
from typing import TYPE_CHECKING, Any, Protocol

import attrs
import trio

from duck.config import Config
from duck.store import JournalEntry, Notifier, Store, Subscription, User

from .autologout import AutologoutTimer
from .grammar.reader import CommandReader
from .grammar.resp_codes import ResponseCode
from .limits import ServerLimits
from .view import SelectedView
from .wire import Wire

if TYPE_CHECKING:
    from .incoming import Incoming
    from .notifyfeed import NotifyFeed
    from .searchcontext import SearchContexts


class State(enum.Enum):
    """RFC 3501 §3 connection states."""

    NOT_AUTHENTICATED = "not authenticated"
    AUTHENTICATED = "authenticated"
    SELECTED = "selected"
    LOGOUT = "logout"


@attrs.define
class ServerContext:
    """What every session of one server shares."""

    store: Store
    config: Config
    shutdown: trio.Event
    notifier: Notifier | None = None
    ssl_context: ssl.SSLContext | None = None
    limits: ServerLimits = attrs.Factory(ServerLimits)
    #: The sessions, whose waits for input it ends at the autologout limits.
    autologout: AutologoutTimer = attrs.Factory(
        lambda self: AutologoutTimer(self.limits), takes_self=True)

    #: Live sessions (``statistics()``).
    sessions: dict[str, int] = attrs.Factory(dict)
    commands: int = 0
    #: Writes of responses by the sessions that ended (each costs a segment and a
    #: wake-up of the client: held responses leave together, duck/imap/wire.py).
    writes: int = 0

    def __attrs_post_init__(self) -> None:
        self.limits.per_ip.limit = self.config.imap_max_connections_per_ip
        self.limits.per_user.limit = self.config.imap_max_connections_per_user
        self.limits.literals.total = self.config.literal_memory

    def statistics(self) -> dict[str, object]:
        """Live sessions and commands run (failed logins are counted in the store)."""
        return {
            "sessions": sum(self.sessions.values()),
            "commands": self.commands,
            "writes": self.writes,
        }


#: A handler's return value when it sent its tagged response itself (STARTTLS).
ANSWERED = object()


@attrs.frozen
class Done:
    """How a command completed when not plainly ``OK <VERB> completed``."""

    text: str = ""
    code: ResponseCode | None = None


class CommandContext(Protocol):
    """The session as a command handler uses it (``duck/imap/session.py`` is the one
    implementation): its state, the selected view, and the ways to answer."""

    ctx: ServerContext
    store: Store
    config: Config
    peer: str
    tls: bool
    state: State
    user: User | None
    view: SelectedView | None
    subscription: Subscription | None
    enabled: set[str]
    notify: NotifyFeed | None
    reader: CommandReader
    incoming: Incoming
    wire: Wire | None
    contexts: SearchContexts

    @property
    def login_allowed(self) -> bool: ...

    @property
    def journal_unread(self) -> bool: ...

    @property
    def view_behind(self) -> bool: ...

    @property
    def utf8(self) -> bool: ...

    @property
    def rev2(self) -> bool: ...

    @property
    def condstore(self) -> bool: ...

    @property
    def qresync(self) -> bool: ...

    def capabilities(self) -> tuple[str, ...]: ...

    async def send(self, *responses: Any) -> None: ...

    async def send_tagged(
        self, tag: str, status: str, text: str, code: ResponseCode | None = None
    ) -> None: ...

    async def bye(self, text: str, code: ResponseCode | None = None) -> None: ...

    async def receive(self) -> bytes | None: ...

    async def read_line(self) -> bytes | None: ...

    def watch(self, path: str) -> Subscription | None: ...

    def select(self, view: SelectedView, watching: Subscription | None = None) -> None: ...

    def unselect(self) -> None: ...

    async def flush_updates(self, *, allow_expunge: bool, poll: bool = False,
                            then: Any = None) -> bool: ...

    async def catch_up(self) -> bool: ...

    async def poll_view(self) -> None: ...

    def view_complete(self) -> bool: ...

    def changed(self, *mailbox_ids: str) -> None: ...

    def wrote(self, mailbox_id: str, entries: list[JournalEntry]) -> bool: ...

    async def enable_condstore(self) -> None: ...

    def login_as(self, user: User) -> None: ...

    def logout_user(self) -> None: ...

    def take_user_slot(self, user: User) -> bool: ...
