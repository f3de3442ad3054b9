#!/usr/bin/env python3
# SPDX-License-Identifier: ISC
"""make bench, "hostile pages": what the densest legal page of each shape
that was once quadratic costs the adapter (README "Errors and limits").

    scripts/bench_hostile.py BUILD_DIR [MIB]

Each shape is one page of one run, MIB (default 4) MiB long, as dense as
the page limits allow (one JSON value per 10 bytes), and valid JSON:
  duplicate member names     400,000 members, each name given twice
  \\u0000 / lone surrogates   260,000 members, each value "\\u0000" or
                             "\\udc00" (alternately)
  distinct problems          one array of 400,000 numbers where strings
                             (Cotool toolNames) or objects (Codegen
                             github_pull_requests) belong
  duplicate pull request ids 140,000 pull requests, each id twice
  metadata of 400,000       Codegen metadata (kept as compact JSON text)
  members                    as dense as the densest tree
  densest tree (reference)   400,000 members "abcd":"": the most cJSON
                             nodes and strings a page may hold
BUILD_DIR/hostile (tests/bench/hostile.c) parses each page with the
adapter's parse_page and prints the parse time and the resident memory
the parse took at its peak.
"""
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"
# Seconds a shape may take before the row says so (target: well under 1).
TARGET_S = 1.0


def names(n, width):
    """n distinct member names of width characters."""
    out = []
    for i in range(n):
        s = []
        for _ in range(width):
            i, d = divmod(i, len(ALPHABET))
            s.append(ALPHABET[d])
        out.append("".join(s))
    return out


def page(kind, members):
    """One run whose members are the text members (no braces)."""
    if kind == "codegen":
        return ('{"items": [{"id": 1, "organization_id": 1, "status": '
                '"COMPLETE", ' + members + '}], "total": 1}').encode()
    return ('{"runs": [{"id": "hostile-1", "status": "done", ' + members +
            '}], "totalCount": 1}').encode()


def duplicate_names(kind, size):
    n = size // 10 // 2                 # "abcd":10, = 10 bytes
    ks = names(n, 4)
    return page(kind, ",".join(f'"{k}":10' for k in ks + ks))


def bad_escapes(kind, size):
    n = size // 16                      # "abcd":"\u0000", = 16 bytes
    esc = ("\\u0000", "\\udc00")
    return page(kind, ",".join(f'"{k}":"{esc[i % 2]}"'
                               for i, k in enumerate(names(n, 4))))


def distinct_problems(kind, size):
    n = size // 10                      # 100000000, = 10 bytes
    key = "github_pull_requests" if kind == "codegen" else "toolNames"
    return page(kind, f'"{key}":[' +
                ",".join(str(100000000 + i) for i in range(n)) + "]")


def duplicate_prs(kind, size):
    n = size // 30 // 2                 # 3 values: 30 bytes a request
    ids = list(range(1, n + 1)) * 2
    return page(kind, '"github_pull_requests":[' + ",".join(
        f'{{"id":{1000000 + i}}}'.ljust(29) for i in ids) + "]")


def huge_metadata(kind, size):
    n = size // 10                      # "abcd":"", = 10 bytes
    return page(kind, '"metadata":{' +
                ",".join(f'"{k}":""' for k in names(n, 4)) + "}")


def densest_tree(kind, size):
    n = size // 10                      # "abcd":"", = 10 bytes
    return page(kind, ",".join(f'"{k}":""' for k in names(n, 4)))


SHAPES = [
    ("duplicate member names", duplicate_names, ("codegen", "cotool")),
    ("\\u0000 / lone surrogate members", bad_escapes, ("codegen", "cotool")),
    ("distinct problems in one run", distinct_problems,
     ("codegen", "cotool")),
    ("duplicate pull request ids", duplicate_prs, ("codegen",)),
    ("metadata of 400,000 members", huge_metadata, ("codegen",)),
    ("densest tree (reference)", densest_tree, ("codegen", "cotool")),
]


def measure(build, kind, path, timeout=120):
    """The driver's fields as a dict, or {"result": why it failed}."""
    try:
        p = subprocess.run([os.path.join(build, "hostile"), kind, path],
                           capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"result": f"over {timeout} s"}
    if p.returncode != 0 or not p.stdout.strip():
        return {"result": f"exit {p.returncode}: {p.stderr.strip()[-200:]}"}
    return dict(f.split("=", 1) for f in p.stdout.split())


def main(build, out=print, mib=4.0):
    size = int(mib * 1024 * 1024)
    out(f"hostile pages: the densest legal page of each shape, "
        f"{mib:g} MiB, one run")
    worst = 0.0
    with tempfile.TemporaryDirectory(prefix="agentsyncd-hostile-") as d:
        for label, build_page, kinds in SHAPES:
            for kind in kinds:
                body = build_page(kind, size)
                path = os.path.join(d, "page.json")
                with open(path, "wb") as f:
                    f.write(body)
                m = measure(build, kind, path)
                name = f"{label} ({kind})"
                if m.get("result") != "ok":
                    out(f"  {name:46} {m.get('result')}")
                    continue
                s = float(m["seconds"])
                peak = int(m["peak_bytes"])
                worst = max(worst, peak / len(body))
                out(f"  {name:46} {s:7.3f} s {peak / 2**20:7.1f} MiB "
                    f"({peak / len(body):4.1f}x the body)  "
                    f"{m['problems']} problem rows, {m['prs']} PRs"
                    + ("" if s < TARGET_S else
                       f"  OVER the {TARGET_S:g} s target"))
    out(f"  {'peak memory / body, worst shape':46} {worst:.1f}x")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        sys.exit(64)
    main(sys.argv[1], mib=float(sys.argv[2]) if len(sys.argv) > 2 else 4.0)
