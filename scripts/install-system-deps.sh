#!/usr/bin/env bash
# Installs the system packages sepframework needs when they are missing: ffmpeg (decoding
# for museval/stempeg) and, for a Debian/Ubuntu system Python, python3-venv.
# Usage: install-system-deps.sh [PYTHON]. Runs apt-get only as root on Debian/Ubuntu;
# otherwise says what to install.
set -euo pipefail
python=${1:-python3}
missing=()
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
"$python" -c "import ensurepip, venv" >/dev/null 2>&1 || missing+=(python3-venv)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing system packages: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    echo "Please install these system packages first: ${missing[*]}" >&2
    echo "(e.g. 'sudo apt-get install ${missing[*]}' or 'brew install ${missing[*]}')" >&2
    exit 1
fi
