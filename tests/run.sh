#!/bin/sh
# SPDX-License-Identifier: ISC
# tests/run.sh BUILD_DIR [unit|integration]: see tests/runtests.py
exec python3 "$(dirname "$0")/runtests.py" "$@"
