#!/usr/bin/env python3
"""Writes the two super-linear inputs found by review of the fuzz targets (see README.md):
   admin-set-to.txt   `set tototo...to!`  (AdminParse.parse, ~32 KB: ~4 s in a release build)
   session-dollar.txt `SET x = $aaa...a$$$$...` (SessionCommandScanner.scan, ~1.3 MB: ~6 s)
Usage: make_slow_inputs.py [DIR]; feed them to the targets: bin/FuzzAdmin admin-set-to.txt
(the session one as a Query payload: bin/FuzzSession session-dollar.txt)."""
import os, sys
d = sys.argv[1] if len(sys.argv) > 1 else "."
n = 16000
open(os.path.join(d, "admin-set-to.txt"), "w").write("set " + "to" * n + "!")
n = 320000
open(os.path.join(d, "session-dollar.txt"), "w").write("SET x = $" + "a" * n + "$" + "$" * (3 * n) + "\0")
