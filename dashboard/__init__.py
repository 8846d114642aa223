"""The staff dashboard: a static single page (live map, attention list, details card).

The API serves ``INDEX_HTML`` at ``/`` and mounts ``STATIC_DIR`` at ``/static``. The page is
plain files — vanilla JavaScript modules and a vendored Leaflet
(``scripts/vendor-leaflet.sh``) — so there is no build step and nothing is fetched from
the internet at run time. It reads ``/api/v1/config``, ``/api/v1/community`` and
``/api/v1/latest`` and follows ``/ws/live``.
"""

from pathlib import Path

STATIC_DIR: Path = Path(__file__).resolve().parent / "static"
INDEX_HTML: Path = STATIC_DIR / "index.html"
# The caregiver's mobile page, served at ``/caregiver/``.
CAREGIVER_HTML: Path = STATIC_DIR / "caregiver.html"
# The sign-in page, served at ``/login/``; every other page sends a signed-out user here.
LOGIN_HTML: Path = STATIC_DIR / "login.html"
# The family member's mobile page (signs in on the page), served at ``/family/``.
FAMILY_HTML: Path = STATIC_DIR / "family.html"

__all__ = ["CAREGIVER_HTML", "FAMILY_HTML", "INDEX_HTML", "LOGIN_HTML", "STATIC_DIR"]
