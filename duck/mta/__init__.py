"""What the MTA in front of duck asks before it accepts mail: is this recipient
(or this domain) ours? A Postfix socketmap server (``socketmap.py``); the HTTP API
answers the same question at ``GET /recipients/{address}``."""
