"""duck: a mail store server (IMAP, LMTP, HTTP API with push) on MongoDB."""
__version__ = "0.1.0"
