"""ManageSieve (RFC 5804): users upload, check and activate their Sieve scripts.

The LMTP shape: ``protocol`` is the sans-IO machine (bytes in, typed commands
out), ``wire`` writes responses, ``server`` drives sessions over trio, and
``store_backend`` translates between ``backend``'s interface and the store.
"""
