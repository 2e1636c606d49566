#!/usr/bin/env bash
# Installs what Space needs on a Debian machine, idempotently: the system libraries the package links
# (OpenBLAS, oneDNN, libyaml, libpng), GoogleTest and CMake for the C kernel tests. Swift itself is
# expected at /opt/swift or on PATH.
set -euo pipefail

packages=(libopenblas-dev libdnnl-dev libyaml-dev libpng-dev libgtest-dev cmake pkg-config)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v swift >/dev/null 2>&1; then
    if [ -x /opt/swift/usr/bin/swift ]; then
        echo "setup: add /opt/swift/usr/bin to PATH" >&2
    else
        echo "setup: Swift 6 is required (https://www.swift.org/install/linux/)" >&2
        exit 1
    fi
fi
echo "setup: system packages present"
