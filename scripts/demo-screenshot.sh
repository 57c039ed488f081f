#!/bin/sh
# Renders the demo's live view to docs/demo-view.png (the README's screenshot): the view
# drawn by the demo's own code into a buffer, painted with a monospace font.
# Needs a monospace TrueType font (Debian: fonts-dejavu-core); FONT overrides the path.
set -eu
cd "$(dirname "$0")/.."
FONT="${FONT:-/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf}"
cargo run --quiet --example demo_screenshot -- "$FONT" docs/demo-view.png
echo "wrote docs/demo-view.png"
