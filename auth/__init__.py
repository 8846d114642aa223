"""People and access: roles and permissions as data, tokens, the login rate limit.

Pure logic (no database, no wall clock: ``now`` is passed in); the shells are
``storage/accounts.py``, ``api/auth_deps.py`` and ``api/routes/auth.py``.
"""
