#!/usr/bin/env python3
"""Sums Check's "Checks: N, Failures: F, Errors: E" lines over every meson test and prints
"P passed, F failed". A test executable that failed without such a line (a crash, a
sanitizer abort, a timeout) counts as one failure. Exit status 1 when anything failed."""
import json
import re
import sys

line_re = re.compile(r"Checks: (\d+), Failures: (\d+), Errors: (\d+)")
passed = failed = 0
with open(sys.argv[1]) as f:
    for raw in f:
        t = json.loads(raw)
        out = (t.get("stdout") or "") + (t.get("stderr") or "")
        counts = line_re.findall(out)
        ok = t.get("result") in ("OK", "EXPECTEDFAIL", "SKIP")
        for n, fl, er in counts:
            passed += int(n) - int(fl) - int(er)
            failed += int(fl) + int(er)
        if not counts:
            if ok:
                passed += 1
            else:
                failed += 1
        elif not ok and not any(int(fl) + int(er) for _, fl, er in counts):
            failed += 1  # all checks passed, yet the executable failed (leak, crash at exit)
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
