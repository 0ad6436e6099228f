"""The sieve room: a user's Sieve scripts (one active) and the duplicate memory.

The store keeps scripts as text and never parses them (the Sieve language lives
in ``duck/sieve``, above the store): the protocols check a script before they
hand it over, and record here what went wrong when a stored one fails at
delivery, for the user to see.

May use: ``engine`` and the store's vocabulary. Only the top of the store sits
above it.
"""
