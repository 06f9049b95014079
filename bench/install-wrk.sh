#!/bin/sh
# Install wrk, the load generator `make bench` drives keyguard with, from the distribution's packages.
# Debian/Ubuntu's wrk is built with LuaJIT, which bench/admission.lua needs (request bodies, JSON summary).
# Does nothing when wrk is already on PATH.
set -eu
if command -v wrk >/dev/null 2>&1; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-wrk: no apt-get here; install wrk (with Lua support) with your package manager" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install-wrk: need root (or sudo) to run: apt-get update && apt-get install -y wrk" >&2
        exit 1
    fi
fi
echo "install-wrk: installing wrk from the distribution's packages" >&2
$SUDO apt-get update
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends wrk
command -v wrk >/dev/null 2>&1 || { echo "install-wrk: wrk is still not on PATH" >&2; exit 1; }
