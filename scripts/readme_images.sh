#!/usr/bin/env bash
# Regenerate the README's pictures with the booth itself, from the shared test media.
set -euo pipefail
cd "$(dirname "$0")/.."
ASSETS="${BOOTH_ASSETS:-../shared/assets}"
export BOOTH_PLATE="${BOOTH_PLATE:-$ASSETS/scenes/sol46/PIA24542_large.jpg}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

booth compose "$ASSETS/people/rembg_girl-3.jpg" -o "$tmp/compose.jpg" --mirror
python scripts/edge_crops.py --assets "$ASSETS" --out docs/edge-crops.png
# LAN mode with the venue's Wi-Fi: the result screen shows the Wi-Fi's code beside the photo's
# (and the link a phone on that network would open; the server itself stays on loopback).
cat > "$tmp/booth.toml" <<'TOML'
[server]
public_url = "http://192.168.1.20:8000"
wifi_ssid = "Mars Museum Guests"
wifi_password = "perseverance46"
TOML
booth run --headless --source "$ASSETS/video/intel_asl_book.mp4" --auto-capture 1 \
    --max-captures 1 --data-dir "$tmp/data" --save-screens "$tmp/screens" \
    --host 127.0.0.1 --port 0 --config "$tmp/booth.toml" >/dev/null
python scripts/boomerang_strip.py --assets "$ASSETS" --out "$tmp/boomerang" >/dev/null
cp "$tmp/boomerang/boomerang-strip.jpg" docs/boomerang-strip.jpg
booth screens --language en --language de --photo "$ASSETS/people/rembg_girl-2.jpg" \
    --out "$tmp/languages" >/dev/null
python - "$tmp" <<'PY'
import sys
from pathlib import Path
from PIL import Image
tmp = Path(sys.argv[1])
Image.open(tmp / "compose.jpg").resize((960, 759)).save("docs/compose-example.jpg", quality=85)
for state in ("attract", "result"):
    shot = sorted((tmp / "screens").glob(f"*-{state}.png"))[0]
    Image.open(shot).convert("RGB").save(f"docs/station-{state}.jpg", quality=85)
for code in ("en", "de"):
    Image.open(tmp / "languages" / f"station-attract-{code}.png").convert("RGB").save(
        f"docs/station-attract-{code}.jpg", quality=88)
PY
echo "wrote docs/edge-crops.png docs/compose-example.jpg docs/station-attract.jpg" \
    "docs/boomerang-strip.jpg docs/station-result.jpg docs/station-attract-en.jpg docs/station-attract-de.jpg"
