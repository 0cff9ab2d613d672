#!/usr/bin/env bash
# The system packages the tests and the demo need besides Python packages, shared by `make test`,
# `make demo` and .ci/run:
#   opencv-doc  ships /usr/share/doc/opencv-doc/examples/data/vtest.avi (real pedestrian video)
#   chromium    Debian's browser: the web page tests drive it with Playwright (no browser download)
# Usage: tools/system_deps.sh test|demo. Installs what is missing when run as root on a machine
# with apt-get; otherwise prints exactly what to install, then for `test` exits 1 (make stops
# instead of running tests that cannot pass) and for `demo` carries on (the demo skips the video).
set -euo pipefail

purpose="${1:-test}"
missing=()
[ -f /usr/share/doc/opencv-doc/examples/data/vtest.avi ] || missing+=(opencv-doc)
if [ "$purpose" = "test" ]; then
  [ -x /usr/bin/chromium ] || missing+=(chromium)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  echo "system_deps: installing ${missing[*]} with apt-get" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  exit 0
fi
echo "system_deps: missing Debian packages: ${missing[*]}" >&2
echo "  install them with:  sudo apt-get install ${missing[*]}" >&2
echo "  (opencv-doc: the real video vtest.avi; chromium: the web page tests)" >&2
[ "$purpose" = "demo" ] && exit 0
exit 1
