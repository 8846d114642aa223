"""The dashboard's static files, checked without a browser.

The page runs where there is no internet, so everything it loads must be local; Leaflet
is vendored from the npm package (scripts/vendor-leaflet.sh). The text dictionary must
cover both languages and every key the page uses. The WGS-84 → GCJ-02 conversion is
checked against published reference values, in the real browser.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from dashboard import INDEX_HTML, STATIC_DIR

JS_DIR = STATIC_DIR / "js"
VENDOR = STATIC_DIR / "vendor" / "leaflet"
OWN_TEXT_FILES = [
    INDEX_HTML,
    *sorted(JS_DIR.glob("*.js")),
    *sorted((STATIC_DIR / "css").glob("*.css")),
]


class _AssetRefs(HTMLParser):
    """Collects every URL the page would load: script src, link href, img src..."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value is not None:
                self.urls.append(value)


def _asset_refs() -> list[str]:
    parser = _AssetRefs()
    parser.feed(INDEX_HTML.read_text(encoding="utf-8"))
    return parser.urls


def test_index_loads_only_local_assets() -> None:
    urls = _asset_refs()
    assert any(u.endswith("leaflet.js") for u in urls)
    for url in urls:
        assert url.startswith("/static/") or url.startswith("data:"), url


def test_no_remote_urls_in_own_files() -> None:
    # Our own HTML, JS and CSS name no remote host at all: no CDN, no web font,
    # no tile server (the tile URL comes from /api/v1/config).
    for path in OWN_TEXT_FILES:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"https?://|(?<![:\w])//[\w.-]+\.\w+/", text), path


def test_referenced_assets_exist() -> None:
    for url in _asset_refs():
        if url.startswith("/static/"):
            assert (STATIC_DIR / url.removeprefix("/static/")).is_file(), url
    # ES module imports between our own modules resolve to files.
    for path in JS_DIR.glob("*.js"):
        for spec in re.findall(r"""from\s+['"](\.[^'"]+)['"]""", path.read_text(encoding="utf-8")):
            assert (path.parent / spec).resolve().is_file(), f"{path.name} imports {spec}"


def test_vendored_leaflet_is_complete() -> None:
    js = VENDOR / "leaflet.js"
    css = VENDOR / "leaflet.css"
    for path in (js, css, VENDOR / "LICENSE", VENDOR / "VERSION"):
        assert path.is_file(), path
    assert "Leaflet 1.9.4" in js.read_text(encoding="utf-8")[:300]
    assert (VENDOR / "LICENSE").read_text(encoding="utf-8").startswith("BSD 2-Clause License")
    # Every image the stylesheet refers to is there.
    images = re.findall(r"url\((images/[^)]+)\)", css.read_text(encoding="utf-8"))
    assert images
    for rel in images:
        assert (VENDOR / rel).is_file(), rel


def _dictionary() -> dict[str, set[str]]:
    """Keys of MESSAGES.zh and MESSAGES.en, read from the source of i18n.js."""
    src = (JS_DIR / "i18n.js").read_text(encoding="utf-8")
    blocks = dict(re.findall(r"\n  (zh|en): \{\n(.*?)\n  \},", src, flags=re.S))
    assert set(blocks) == {"zh", "en"}
    return {
        lang: set(re.findall(r"^\s+'([\w.]+)':", body, flags=re.M)) for lang, body in blocks.items()
    }


def test_both_languages_have_the_same_keys() -> None:
    d = _dictionary()
    assert d["zh"] == d["en"], d["zh"] ^ d["en"]


def test_every_text_key_used_is_defined() -> None:
    keys = _dictionary()["zh"]
    used = set(
        re.findall(r'data-i18n(?:-title)?="([\w.]+)"', INDEX_HTML.read_text(encoding="utf-8"))
    )
    for path in JS_DIR.glob("*.js"):
        used |= set(re.findall(r"\bt\('([\w.]+)'", path.read_text(encoding="utf-8")))
    # Keys built at run time from API codes and internal states.
    api_reasons = [
        "sos",
        "fall",
        "hr_high",
        "hr_low",
        "spo2_low",
        "offline",
        "low_battery",
        "not_worn",
    ]
    used |= {f"reason.{r}" for r in api_reasons}
    used |= {f"src.{s}" for s in ["gps", "wifi", "lbs", "beacon"]}
    used |= {f"conn.{s}" for s in ["open", "connecting", "down"]}
    used |= {f"legend.{c}" for c in ["red", "notice", "offline", "ok"]}
    event_types = [
        "sos",
        "fall",
        "cancel",
        "service",
        "off_wrist",
        "on_wrist",
        "low_battery",
        "power_off",
    ]
    used |= {f"event.{e}" for e in event_types}
    assert used <= keys, used - keys


# (wgs_lat, wgs_lon, gcj_lat, gcj_lon): the reference values that implementations of
# the standard formula publish (Shanghai, Shenzhen, Beijing).
GCJ_REFERENCE = [
    (31.1774276, 121.5272106, 31.17530398364597, 121.531541859215),
    (22.543847, 113.912316, 22.540796131694766, 113.9171764808363),
    (39.911954, 116.377817, 39.91334545536069, 116.38404722455657),
]


def test_wgs84_to_gcj02_matches_reference() -> None:
    """Run the page's own coords.js in the real browser (served over HTTP, as ES modules
    need) against the published reference values."""
    import functools
    import http.server
    import threading

    from browser import chromium_page

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(STATIC_DIR))
    handler.log_message = lambda *a: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    points = [[lat, lon] for lat, lon, _, _ in GCJ_REFERENCE] + [[45.0, 183.0], [48.85, 2.35]]
    try:
        with chromium_page() as page:
            page.goto(f"http://127.0.0.1:{server.server_address[1]}/index.html?static-test")
            got = page.evaluate(
                """async (points) => {
                    const { wgs84ToGcj02 } = await import('/js/coords.js');
                    return points.map(([a, b]) => wgs84ToGcj02(a, b));
                }""",
                points,
            )
    finally:
        server.shutdown()
    for (_, _, gcj_lat, gcj_lon), (lat, lon) in zip(GCJ_REFERENCE, got, strict=False):
        assert lat == pytest.approx(gcj_lat, abs=1e-9)
        assert lon == pytest.approx(gcj_lon, abs=1e-9)
    # Outside China GCJ-02 is WGS-84.
    assert got[-2:] == [[45.0, 183.0], [48.85, 2.35]]


def test_package_exposes_paths() -> None:
    assert isinstance(STATIC_DIR, Path) and STATIC_DIR.is_dir()
    assert INDEX_HTML.is_file() and INDEX_HTML.parent == STATIC_DIR
