"""The accounts room: who may log in and what they may hold.

Owns users and their password check (``users``, ``passwords``), address
normalization and routing (``addresses``) and storage quota (``quota``).

May use: ``engine`` and the store's vocabulary. Not ``index``, ``push`` or ``mail``:
an account knows nothing of the messages it owns.
"""
