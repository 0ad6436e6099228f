"""Moving mail in and out: ``duck import`` (Maildir, mbox, a remote IMAP account),
``duck export`` (mbox, Maildir) and the ``duck backup`` / ``duck restore`` commands.

This package sits at the CLI's level (docs/architecture.md, "Layers"): it uses the
store's public API and nothing of the protocol layers' servers; the remote IMAP
account is read with IMAPClient (imaplib underneath) in worker threads.
"""
