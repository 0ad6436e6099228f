"""Mail rules on delivery: a user's active Sieve script turned into what happens to
one delivered copy (store it where, with which flags; refuse it; send a redirect
or a vacation reply through the outbound queue).

Between the protocols that deliver (LMTP; the API's delivery) and the store: it
uses the store's public API, the pure ``duck.sieve`` language and the pure
``duck.outbound.autoreply`` rules, and no protocol.
"""
