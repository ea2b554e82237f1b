#!/usr/bin/env python3
"""Checks the layering of the server crate's top-level modules (see the "Layering"
section of crates/server/src/lib.rs): each module may import only modules of a lower
layer (or its own). Lists every `crate::X` a module names, in `use` lines and in
paths, and fails naming the file, the line and the rule broken. Also fails on a
top-level module missing from the table, so a new module must be placed."""

import pathlib
import re
import sys

SRC = pathlib.Path(__file__).resolve().parent.parent / "crates" / "server" / "src"

# module -> layer; an import must go to a strictly lower layer, or a lower rank
# inside the same layer (the order the manual gives).
LAYERS = {
    "config": (1, 0),
    "backoff": (2, 0),
    "redact": (2, 0),
    "files": (2, 0),
    "tls": (2, 0),
    "hub": (3, 0),
    "metrics": (4, 0),
    "hook": (4, 1),
    "auth": (4, 2),
    "rtmp": (5, 0),
    "live_hls": (5, 0),
    "record": (5, 0),
    "http": (5, 1),
    "proxy": (5, 1),
    "transcode": (5, 2),
    "api": (6, 0),
    "server": (7, 0),
}

USE_GROUP = re.compile(r"\bcrate::\{([^}]*)\}", re.S)
PATH = re.compile(r"\bcrate::([a-z_][a-z0-9_]*)")


def top_module(path: pathlib.Path) -> str | None:
    rel = path.relative_to(SRC)
    if rel.parts[0] in ("lib.rs", "main.rs"):
        return None
    return rel.parts[0].removesuffix(".rs")


def main() -> int:
    errors = []
    seen = set()
    for path in sorted(SRC.rglob("*.rs")):
        me = top_module(path)
        if me is None:
            continue
        seen.add(me)
        if me not in LAYERS:
            errors.append(f"{path.relative_to(SRC)}: module `{me}` is not in the layer table of scripts/check-layers.py")
            continue
        text = path.read_text()
        lines = text.splitlines()
        for lineno, line in enumerate(lines, 1):
            code = line.split("//", 1)[0]
            targets = set(PATH.findall(code))
            for group in USE_GROUP.findall(code):
                targets.update(t.strip().split("::")[0] for t in group.split(",") if t.strip())
            for t in targets:
                if t in ("self", "super") or t == me:
                    continue
                if t not in LAYERS:
                    continue  # an item of lib.rs itself (e.g. `crate::serve`)
                if LAYERS[t] >= LAYERS[me]:
                    errors.append(
                        f"{path.relative_to(SRC)}:{lineno}: `{me}` (layer {LAYERS[me]}) imports `{t}` (layer {LAYERS[t]}): {line.strip()}"
                    )
    # A multi-line `use crate::{...}` group: scan whole files for groups too.
    for path in sorted(SRC.rglob("*.rs")):
        me = top_module(path)
        if me is None or me not in LAYERS:
            continue
        for group in USE_GROUP.findall(path.read_text()):
            for t in (t.strip().split("::")[0] for t in group.split(",") if t.strip()):
                if t in LAYERS and t != me and LAYERS[t] >= LAYERS[me]:
                    msg = f"{path.relative_to(SRC)}: `{me}` imports `{t}` in a `use crate::{{...}}` group"
                    if msg not in errors:
                        errors.append(msg)
    for e in errors:
        print(e, file=sys.stderr)
    if errors:
        print(f"layering: {len(errors)} violation(s)", file=sys.stderr)
        return 1
    print(f"layering: {len(seen)} top-level modules, no import against the layers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
