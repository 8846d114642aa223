#!/usr/bin/env bash
# Reproduce dashboard/static/vendor/leaflet/ from the npm package.
#
# The dashboard must work with no internet at run time (no CDN), so Leaflet is
# vendored: the files below are committed, node_modules is not. This script is
# how they were taken; re-run it to check them or to move to another version
# (then update VERSION and INTEGRITY from `npm view leaflet@X dist.integrity`).
#
#   bash scripts/vendor-leaflet.sh          # (re)write the vendored files
#   bash scripts/vendor-leaflet.sh --check  # fail if the committed files differ
set -euo pipefail

VERSION="1.9.4"
# The registry's published integrity for leaflet-1.9.4.tgz: the tarball we copy
# from must be exactly the one everybody else gets.
INTEGRITY="sha512-nxS1ynzJOmOlHp+iL3FyWqK89GtNL8U8rvlMOsQdTTssxZwCXh8N2NB3GDQOL+YR3XnWyZAxwQixURb+FA74PA=="

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="$ROOT/dashboard/static/vendor/leaflet"
MODE="${1:-write}"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

cd "$WORK"
npm pack --silent "leaflet@$VERSION" >/dev/null
TGZ="leaflet-$VERSION.tgz"
GOT="sha512-$(openssl dgst -sha512 -binary "$TGZ" | base64 -w0)"
if [[ "$GOT" != "$INTEGRITY" ]]; then
  echo "integrity mismatch for $TGZ: $GOT" >&2
  exit 1
fi
tar xzf "$TGZ"

# Only what the page loads: the script, the stylesheet, the images the
# stylesheet refers to (relative url(images/...)), and the licence (BSD-2,
# which requires the notice to travel with the code). No source map: the
# page never loads it and it is the biggest file in the package.
STAGE="$WORK/stage"
mkdir -p "$STAGE/images"
cp package/dist/leaflet.js package/dist/leaflet.css "$STAGE/"
cp package/dist/images/* "$STAGE/images/"
cp package/LICENSE "$STAGE/LICENSE"
echo "leaflet $VERSION from the npm registry, $INTEGRITY" > "$STAGE/VERSION"

if [[ "$MODE" == "--check" ]]; then
  diff -r "$STAGE" "$DEST"
  echo "vendored leaflet $VERSION matches the npm package"
else
  rm -rf "$DEST"
  mkdir -p "$(dirname "$DEST")"
  cp -r "$STAGE" "$DEST"
  echo "wrote $DEST"
fi
