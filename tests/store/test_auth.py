"""store.authenticate: application passwords, two-factor, the shared throttle, the
auth log, hash upgrades, SCRAM-SHA-256 (RFC 5802/7677)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import threading
import time

import pytest
from cryptography.hazmat.primitives.hashes import SHA1
from cryptography.hazmat.primitives.twofactor.totp import TOTP

from duck.store import (
    AuthenticationFailed,
    InvalidInput,
    NotFound,
    Store,
    Throttled,
    ThrottlePolicy,
    TwoFactorRequired,
)
from duck.store.accounts.passwords import hash_password, parameters
from duck.store.accounts.scram import ScramError, ScramServer, derive_keys
from duck.store.accounts.totp import matching_step

PEER = "192.0.2.7"


async def _login(store: Store, user: str, secret: str, protocol: str = "imap",
                 otp: str | None = None, peer: str = PEER) -> str | None:
    result = await store.authenticate(user, secret, protocol=protocol, mechanism="PLAIN",
                                      peer=peer, otp=otp)
    return result.app_password


def _code(secret_b32: str, at: float) -> str:
    key = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    return TOTP(key, 6, SHA1(), 30).generate(int(at)).decode()


@pytest.fixture
def fast(store: Store) -> Store:
    # No sleeping on failures in these tests (the delay has its own test).
    store.configure_auth(ThrottlePolicy(delay_base=0.0, delay_max=0.0))
    return store


async def test_app_password_scopes_and_listing(fast: Store) -> None:
    user = await fast.users.create("ann@example.com", "main-pw")
    made = await fast.app_passwords.create(user.id, "phone", ["imap"])
    assert len(made.secret.replace(" ", "")) == 16
    # Typed without spaces and in capitals: still the same password.
    assert await _login(fast, "ann@example.com", made.secret.replace(" ", "").upper()) \
        == made.app_password.id
    with pytest.raises(AuthenticationFailed):
        await _login(fast, "ann@example.com", made.secret, protocol="api")
    listed = await fast.app_passwords.of_user(user.id)
    assert [a.id for a in listed] == [made.app_password.id]
    assert listed[0].last_used is not None and listed[0].last_ip == PEER
    assert "hash" not in repr(listed[0]) and made.secret not in repr(listed)
    with pytest.raises(InvalidInput):
        await fast.app_passwords.create(user.id, "x", ["gopher"])
    log = await fast.authlog.of_user(user.id)
    assert [(e.protocol, e.result, e.reason) for e in log] == [
        ("api", "failure", "scope"), ("imap", "success", None)]
    assert all(e.app_password == made.app_password.id for e in log)


async def test_revocation_is_seen_at_once_by_another_process(
        fast: Store, mongo_uri: str, db_name: str) -> None:
    user = await fast.users.create("bo@example.com", "main-pw")
    made = await fast.app_passwords.create(user.id, "laptop", ["imap", "pop3"])
    other = await Store.open(mongo_uri, db_name)  # another process's store object
    try:
        assert await _login(other, "bo@example.com", made.secret, "pop3")
        await fast.app_passwords.revoke(user.id, made.app_password.id)
        with pytest.raises(AuthenticationFailed):
            await _login(other, "bo@example.com", made.secret, "pop3")
    finally:
        await other.aclose()
    # Another user cannot revoke it (nor see it).
    stranger = await fast.users.create("eve@example.com", "pw")
    again = await fast.app_passwords.create(user.id, "tablet", ["imap"])
    with pytest.raises(NotFound):
        await fast.app_passwords.revoke(stranger.id, again.app_password.id)
    assert await fast.app_passwords.of_user(stranger.id) == []


async def test_two_factor_rules(fast: Store) -> None:
    user = await fast.users.create("cy@example.com", "main-pw")
    app = await fast.app_passwords.create(user.id, "mail", ["imap"])
    setup = await fast.two_factor.setup(user.id)
    assert setup.uri.startswith("otpauth://totp/") and "secret=" in setup.uri
    now = time.time()
    with pytest.raises(AuthenticationFailed):
        await fast.auth.enable_totp(user.id, "000000" if _code(setup.secret, now) != "000000"
                                    else "111111")
    codes = await fast.auth.enable_totp(user.id, _code(setup.secret, now - 30))
    assert len(codes) == 10 and await fast.two_factor.enabled(user.id)
    # WildDuck's rule: the main password no longer opens IMAP; app passwords do.
    with pytest.raises(AuthenticationFailed):
        await _login(fast, "cy@example.com", "main-pw", "imap")
    assert await _login(fast, "cy@example.com", app.secret, "imap")
    # The API takes the main password with a code, and never the same code twice.
    with pytest.raises(TwoFactorRequired):
        await _login(fast, "cy@example.com", "main-pw", "api")
    code = _code(setup.secret, time.time())
    await _login(fast, "cy@example.com", "main-pw", "api", otp=code)
    with pytest.raises(TwoFactorRequired):
        await _login(fast, "cy@example.com", "main-pw", "api", otp=code)
    # A recovery code works once.
    await _login(fast, "cy@example.com", "main-pw", "api", otp=codes[0].upper())
    with pytest.raises(TwoFactorRequired):
        await _login(fast, "cy@example.com", "main-pw", "api", otp=codes[0])
    await fast.two_factor.disable(user.id)
    await _login(fast, "cy@example.com", "main-pw", "imap")


async def test_two_factor_codes_are_rate_limited(fast: Store) -> None:
    fast.configure_auth(ThrottlePolicy(delay_base=0.0, delay_max=0.0, otp_limit=3))
    user = await fast.users.create("di@example.com", "main-pw")
    setup = await fast.two_factor.setup(user.id)
    await fast.auth.enable_totp(user.id, _code(setup.secret, time.time()))
    wrong = "123456" if _code(setup.secret, time.time()) != "123456" else "654321"
    for _ in range(3):
        with pytest.raises(TwoFactorRequired):
            await _login(fast, "di@example.com", "main-pw", "api", otp=wrong)
    with pytest.raises(Throttled):  # even the right code now waits out the window
        await _login(fast, "di@example.com", "main-pw", "api",
                     otp=_code(setup.secret, time.time() + 30))


def test_totp_window_is_one_step_either_side() -> None:
    key = b"12345678901234567890"  # RFC 6238 appendix B's SHA-1 seed
    totp = TOTP(key, 8, SHA1(), 30)
    # RFC 6238 appendix B: T = 59 s gives 94287082 (8 digits); ours are 6.
    assert totp.generate(59) == b"94287082"
    six = TOTP(key, 6, SHA1(), 30)
    now = 1_000_000_000
    assert matching_step(key, six.generate(now - 30).decode(), now) == now // 30 - 1
    assert matching_step(key, six.generate(now + 30).decode(), now) == now // 30 + 1
    assert matching_step(key, six.generate(now - 90).decode(), now) is None
    assert matching_step(key, "12a456", now) is None


async def test_throttle_is_shared_by_processes(fast: Store, mongo_uri: str,
                                               db_name: str) -> None:
    # (20 failures over two real `duck serve` processes: test_accounts_two_processes.py.)
    policy = ThrottlePolicy(user_limit=6, peer_limit=1000, delay_base=0.0, delay_max=0.0)
    fast.configure_auth(policy)
    await fast.users.create("fi@example.com", "right")
    other = await Store.open(mongo_uri, db_name)
    other.configure_auth(policy)
    try:
        for i in range(8):
            with pytest.raises(AuthenticationFailed):
                await _login(other if i % 2 else fast, "fi@example.com", "wrong")
        # Each process saw 4 (< 6); together 8: the right password is refused too.
        with pytest.raises(Throttled):
            await _login(fast, "fi@example.com", "right")
        counts = await fast.database.run(fast.auth.throttle.counts_sync, "user:fi@example.com")
        assert counts == {"user:fi@example.com": 6}  # refused tries are not counted
    finally:
        await other.aclose()


async def test_a_success_forgets_the_failures_and_writes_nothing_without_them(
        fast: Store) -> None:
    from duck.store import metrics

    fast.configure_auth(ThrottlePolicy(user_limit=6, delay_base=0.0, delay_max=0.0))
    await fast.users.create("hi@example.com", "right")
    for _ in range(2):
        with pytest.raises(AuthenticationFailed):
            await _login(fast, "hi@example.com", "wrong")
    key = "user:hi@example.com"
    assert await fast.database.run(fast.auth.throttle.counts_sync, key) == {key: 2}
    await _login(fast, "hi@example.com", "right")
    assert await fast.database.run(fast.auth.throttle.counts_sync, key) == {key: 0}
    # With no failure counted, the login's only throttle round trip is the read.
    metrics.reset()
    with metrics.command_scope("LOGIN"):
        await _login(fast, "hi@example.com", "right")
    assert "delete" not in metrics.statistics()["LOGIN"]["by_db_command"]


async def test_failures_are_delayed_successes_are_not(store: Store) -> None:
    import trio

    store.configure_auth(ThrottlePolicy(delay_base=2.0, delay_max=2.0))
    await store.users.create("gi@example.com", "right")
    start = trio.current_time()
    with pytest.raises(AuthenticationFailed):
        await _login(store, "gi@example.com", "wrong")
    assert trio.current_time() - start >= 2.0
    # A brake before the check would hold this one 2 s too (the user has a failure).
    start = trio.current_time()
    await _login(store, "gi@example.com", "right", peer="198.51.100.1")
    assert trio.current_time() - start < 2.0


async def test_old_hashes_are_upgraded_and_scram_keys_added(fast: Store) -> None:
    user = await fast.users.create("ho@example.com", "pw")
    users = fast.database.collection("users")
    await fast.database.run(users.update_one, {"username": "ho@example.com"},
                            {"$set": {"password": hash_password("pw", log_n=4)},
                             "$unset": {"scram": ""}})
    await _login(fast, "ho@example.com", "pw")
    doc = await fast.database.run(users.find_one, {"username": "ho@example.com"})
    assert parameters(doc["password"]) == (15, 8, 1) and "scram" in doc
    assert (await _login(fast, "ho@example.com", "pw")) is None
    assert user.id == str(doc["_id"])


async def test_unknown_users_are_logged_for_the_admin(fast: Store) -> None:
    with pytest.raises(AuthenticationFailed):
        await _login(fast, "nobody@example.com\r\nforged", "x", "pop3")
    entries = await fast.authlog.unknown_users()
    assert entries[0].username.startswith("nobody") and entries[0].protocol == "pop3"
    assert entries[0].user_id is None and entries[0].peer == PEER


# -- SCRAM-SHA-256 ---------------------------------------------------------------------------


def test_rfc7677_example_vector() -> None:
    # RFC 7677 §3: user "user", password "pencil".
    salt = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
    server = ScramServer(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
                         server_nonce="%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0")
    assert server.username == "user"
    first = server.server_first(derive_keys("pencil", salt=salt, iterations=4096))
    assert first == (b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                     b"s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
    final = server.client_final(
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
    assert final == b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


def test_scram_refuses_a_wrong_proof_and_bad_messages() -> None:
    server = ScramServer(b"n,,n=user,r=abc", server_nonce="def")
    server.server_first(derive_keys("pencil", salt=b"s" * 16))
    with pytest.raises(ScramError):
        server.client_final(b"c=biws,r=abcdef,p=" + base64.b64encode(b"x" * 32))
    for bad in (b"p=tls-unique,,n=user,r=x", b"n,,r=x", b"n,a=other,n=user,r=x", b"x"):
        with pytest.raises(ScramError):
            ScramServer(bad)


def scram_client(username: str, password: str) -> tuple[bytes, object]:
    """A hand-written RFC 5802 client: its first message and a function from the
    server-first message to (client-final, expected server-final)."""
    cnonce = "fyko+d2lbbFgONRv9qkxdawL"
    bare = f"n={username},r={cnonce}"

    def final(server_first: bytes) -> tuple[bytes, bytes]:
        fields = dict(item.split("=", 1) for item in server_first.decode().split(","))
        salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(fields["s"]),
                                     int(fields["i"]))
        client_key = hmac.digest(salted, b"Client Key", "sha256")
        stored = hashlib.sha256(client_key).digest()
        without = f"c=biws,r={fields['r']}"
        message = f"{bare},{server_first.decode()},{without}".encode()
        proof = bytes(a ^ b for a, b in zip(client_key, hmac.digest(stored, message, "sha256"),
                                            strict=True))
        server_key = hmac.digest(salted, b"Server Key", "sha256")
        expected = b"v=" + base64.b64encode(hmac.digest(server_key, message, "sha256"))
        return f"{without},p={base64.b64encode(proof).decode()}".encode(), expected

    return f"n,,{bare}".encode(), final


async def test_scram_login_through_the_store(fast: Store) -> None:
    await fast.users.create("ivy@example.com", "pencil")
    first, final = scram_client("ivy@example.com", "pencil")
    login = await fast.auth.scram_begin(first, protocol="imap", peer=PEER)
    client_final, expected = final(login.server_first)  # type: ignore[operator]
    result, server_final = await fast.auth.scram_finish(login, client_final)
    assert result.user.username == "ivy@example.com" and server_final == expected
    first, final = scram_client("ivy@example.com", "pen")
    login = await fast.auth.scram_begin(first, protocol="imap", peer=PEER)
    with pytest.raises(AuthenticationFailed):
        await fast.auth.scram_finish(login, final(login.server_first)[0])  # type: ignore[operator]
    log = await fast.authlog.of_user(result.user.id)
    assert [(e.mechanism, e.result) for e in log] == [
        ("SCRAM-SHA-256", "failure"), ("SCRAM-SHA-256", "success")]


async def test_api_tokens_resolve_expire_and_revoke(fast: Store) -> None:
    user = await fast.users.create("jo@example.com", "pw")
    made = await fast.api_tokens.create(user.id, ttl=dt.timedelta(hours=1))
    found = await fast.api_tokens.resolve(made.secret)
    assert found is not None and found.user_id == user.id
    assert await fast.api_tokens.resolve(made.secret + "x") is None
    short = await fast.api_tokens.create(user.id, ttl=dt.timedelta(seconds=1))
    import trio

    await trio.sleep(1.1)
    assert await fast.api_tokens.resolve(short.secret) is None
    assert [t.id for t in await fast.api_tokens.of_user(user.id)] == [made.token.id]
    users = fast.database.collection("users")
    await fast.database.run(users.update_one, {"username": "jo@example.com"},
                            {"$set": {"disabled": True}})
    assert await fast.api_tokens.resolve(made.secret) is None  # disabled: no access
    await fast.database.run(users.update_one, {"username": "jo@example.com"},
                            {"$set": {"disabled": False}})
    assert await fast.api_tokens.resolve(made.secret) is not None
    await fast.api_tokens.revoke(user.id, made.token.id)
    assert await fast.api_tokens.resolve(made.secret) is None


async def test_scrypt_runs_away_from_the_event_loop_thread(
        fast: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    # scrypt takes tens of milliseconds a password: on the event loop's thread (where
    # store calls run inline) it would stall every other session of the process.
    loop_thread = threading.current_thread()
    seen: list[threading.Thread] = []
    real = hashlib.scrypt

    def watched(*args: object, **kwargs: object) -> bytes:
        seen.append(threading.current_thread())
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(hashlib, "scrypt", watched)
    await fast.users.create("kai@example.com", "kai-pw")
    assert await _login(fast, "kai@example.com", "kai-pw") is None
    for user, secret in (("kai@example.com", "wrong"), ("nobody@example.com", "x")):
        with pytest.raises(AuthenticationFailed):
            await _login(fast, user, secret)
    # The hash at creation, the first login's check, the wrong password's, the
    # unknown user's (against the dummy hash, made once).
    assert len(seen) >= 4
    assert loop_thread not in seen
