#!/usr/bin/python3
"""The layering of src/: which folder may include which. This table is the one place the order is
written; `make test` runs this check (CTest test `layering`), and docs/architecture.md draws it.

A folder may include headers of its own folder and of folders in LOWER layers only: never of a
folder in its own layer or above. Tests and test doubles follow the same rule as their folder.
A folder missing from the table fails the check: place every new folder deliberately.

Usage: scripts/check-layering.py [SRC_DIR]   (default: src next to this script)
       scripts/check-layering.py --self-test (the check catches a planted violation of each kind)
Exit 0 when every include respects the order, 1 otherwise (each offending line is printed).
"""
import os
import re
import sys

# Lowest first.
LAYERS = [
    ["common"],                                    # errors as values, text helpers
    ["http", "sqlite", "endpoints", "manifest",    # mechanisms that know no function state
     "package", "sandbox", "observability"],
    ["catalog", "store", "runtimeapi"],            # what is deployed; the Runtime API
    ["scheduler"],                                 # instance pools
    ["queue"],                                     # durable async events, on the scheduler
    ["schedule"],                                  # schedules, through the queue
    ["gateway"],                                   # the front door, /metrics
    ["admin", "cli"],                              # the admin API; the CLI client
    ["daemon"],                                    # wiring
]

INCLUDE = re.compile(r'^\s*#\s*include\s+"([A-Za-z0-9_]+)/')


def check(src):
    rank = {folder: i for i, layer in enumerate(LAYERS) for folder in layer}
    problems = []
    for folder in sorted(os.listdir(src)):
        root = os.path.join(src, folder)
        if not os.path.isdir(root):
            continue
        if folder not in rank:
            problems.append(f"src/{folder}/: not in the layer table of scripts/check-layering.py; add it to a layer")
            continue
        for dirpath, _, files in os.walk(root):
            for name in sorted(files):
                if not name.endswith((".h", ".hpp", ".cc", ".cpp", ".c")):
                    continue
                path = os.path.join(dirpath, name)
                with open(path, encoding="utf-8", errors="replace") as f:
                    for lineno, line in enumerate(f, 1):
                        m = INCLUDE.match(line)
                        if not m or m.group(1) == folder or m.group(1) not in rank and not os.path.isdir(os.path.join(src, m.group(1))):
                            continue
                        target = m.group(1)
                        if target not in rank:
                            problems.append(f"{os.path.relpath(path, os.path.join(src, '..'))}:{lineno}: includes "
                                            f"src/{target}/, which is not in the layer table")
                        elif rank[target] >= rank[folder]:
                            how = "the same layer as" if rank[target] == rank[folder] else "a higher layer than"
                            problems.append(f"{os.path.relpath(path, os.path.join(src, '..'))}:{lineno}: {folder} includes "
                                            f"{target}/, {how} {folder} (layers: scripts/check-layering.py)")
    return problems


def self_test():
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        def write(rel, text):
            os.makedirs(os.path.dirname(os.path.join(tmp, rel)), exist_ok=True)
            with open(os.path.join(tmp, rel), "w") as f:
                f.write(text)
        write("common/a.h", "#pragma once\n")
        write("catalog/ok.cc", '#include "common/a.h"\n#include "catalog/ok.h"\n')
        if check(tmp):
            print("self-test: a tree without violations was refused")
            return 1
        write("catalog/up.cc", '#include "gateway/front_door.h"\n')
        write("catalog/side.h", '#include "store/store.h"\n')
        write("gateway/front_door.h", "#pragma once\n")
        write("store/store.h", "#pragma once\n")
        write("newfolder/x.cc", "\n")
        found = "\n".join(check(tmp))
        for expected in ("catalog includes gateway/, a higher layer", "catalog includes store/, the same layer",
                         "src/newfolder/: not in the layer table"):
            if expected not in found:
                print(f"self-test: missed '{expected}'; found:\n{found}")
                return 1
    print("self-test ok")
    return 0


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
    problems = check(src)
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} layering problem(s)")
        return 1
    print(f"layering ok: {sum(len(l) for l in LAYERS)} folders in {len(LAYERS)} layers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
