"""Notifications: alerts and orders pushed to the people who must act.

``ladder`` (who is due a message about an alert, when, on which channel) and
``orders`` (a caregiver's new assignment, an emergency order nobody can take) are the
pure core; ``message`` words them; ``apprise_sender`` sends through apprise.  The
shell that reads the database and records every attempt is ``api/notifier.py``.
"""
