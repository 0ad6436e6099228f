"""The administrator's commands (``duck user ...``, ``duck address ...``, ``duck
mailbox list``, ``duck doctor``): they work on the running server's database.

``locate`` finds that database (the state file ``duck serve`` keeps in its data
directory, or ``--mongo-uri``) and never starts a second one unasked; ``admin``
declares and runs the commands.
"""
