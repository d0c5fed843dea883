#!/usr/bin/python3
"""Checks the threading contracts written as annotations (src/common/thread_annotations.h): clang's
-Wthread-safety analysis over the sources that use them, with every finding an error. A field
marked NIMBUS_GUARDED_BY(mu_) touched without mu_ held, a NIMBUS_REQUIRES method called without
its mutex, a lock not released on every path: each fails the check. `make test` runs it (CTest
test `thread_safety`); the daemon itself is built by g++, where the annotations are empty.

Which sources: every src/**/*.cc in the build's compile_commands.json that is not a test
(*_test.cc) and that includes common/mutex.h or common/thread_annotations.h, itself or through
headers of its own folder (queue/delivery.cc through queue/delivery.h): the sources of the
annotated classes. A source that only uses such a class from another folder is left out, as it
cannot reach the class's private mutex and guarded fields; keep them private. Each source is
compiled with its include paths and definitions from the build, by `clang++ -fsyntax-only`
(nothing is generated), several at once.

Usage: scripts/check-thread-safety.py BUILD_DIR [SRC_DIR]  (SRC_DIR: src next to this script)
       scripts/check-thread-safety.py --self-test           (the check catches planted violations)
Environment: CLANGXX, the clang++ to use (default /usr/bin/clang++).
Exit 0 when every checked source is clean, 1 otherwise (clang's messages are printed).
"""
import concurrent.futures
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

ANNOTATIONS = "common/thread_annotations.h"
FLAGS = ["-fsyntax-only", "-Wthread-safety", "-Werror=thread-safety"]
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
SCRIPT_DIR = os.path.dirname(os.path.abspath(__file__))


def find_clang():
    clang = os.environ.get("CLANGXX", "/usr/bin/clang++")
    if os.path.isfile(clang) and os.access(clang, os.X_OK):
        return clang
    return shutil.which(clang) if os.sep not in clang else None


def uses_annotations(path, src, seen):
    """Whether `path` includes ANNOTATIONS itself or through headers of its own folder of `src`."""
    if path in seen:
        return seen[path]
    seen[path] = False  # an include cycle adds nothing
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return False
    folder = os.path.relpath(path, src).split(os.sep)[0]
    for name in INCLUDE.findall(text):
        if name == ANNOTATIONS or name == "common/mutex.h":
            seen[path] = True
            return True
        for base in (src, os.path.dirname(path)):
            header = os.path.normpath(os.path.join(base, name))
            if (os.path.relpath(header, src).split(os.sep)[0] == folder and os.path.isfile(header)
                    and uses_annotations(header, src, seen)):
                seen[path] = True
                return True
    return False


def compile_flags(entry, path):
    """The entry's include paths, definitions and language options, without its source file, its
    outputs and dependency files, and (g++'s) warning options; and CMake's precompiled-header
    prelude (`-include .../cmake_pch.hxx`), or None."""
    args = entry["arguments"] if "arguments" in entry else shlex.split(entry["command"])
    directory = entry.get("directory", "")
    flags, prelude = [], None
    it = iter(args[1:])
    for a in it:
        if a in ("-o", "-MF", "-MT", "-MQ"):
            next(it, None)
        elif a == "-include":
            prelude = os.path.realpath(os.path.join(directory, next(it)))
        elif a in ("-c", "-MD", "-MMD") or a.startswith("-W") and not a.startswith(("-Wp,", "-Wa,")):
            continue
        elif not a.startswith("-") and os.path.realpath(os.path.join(directory, a)) == path:
            continue
        else:
            flags.append(a)
    return flags, prelude


def check(build, src, clang, jobs):
    """(number of sources checked, problems), each problem a string ready to print."""
    with open(os.path.join(build, "compile_commands.json")) as f:
        entries = json.load(f)
    src = os.path.realpath(src)
    seen, chosen = {}, {}
    for e in entries:
        path = os.path.realpath(os.path.join(e.get("directory", ""), e["file"]))
        if not path.startswith(src + os.sep) or not path.endswith(".cc") or path.endswith("_test.cc"):
            continue
        if path not in chosen and uses_annotations(path, src, seen):
            chosen[path] = (e.get("directory", build),) + compile_flags(e, path)

    def run(cmd, cwd):
        p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
        return p.returncode, p.stdout + p.stderr

    with tempfile.TemporaryDirectory() as tmp, concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        # CMake's prelude (Boost.Asio and Beast) is most of each source's parse. The build's
        # precompiled header is g++'s, which clang cannot read, so the prelude is precompiled
        # once more with clang, once per set of flags, while the sources without one are checked.
        # Each target has a prelude file of its own, most with the same text: one per text.
        pchs, texts = {}, {}
        for cwd, flags, prelude in chosen.values():
            if prelude and prelude not in texts:
                with open(prelude) as f:
                    texts[prelude] = f.read()
            key = (tuple(flags), texts.get(prelude))
            if prelude and key not in pchs:
                header = os.path.join(tmp, f"prelude{len(pchs)}.h")
                with open(header, "w") as f:
                    f.write(texts[prelude])
                cmd = [clang] + flags + ["-Wno-pragma-system-header-outside-header", "-x", "c++-header", header,
                                         "-o", header + ".pch"]
                pchs[key] = (header + ".pch", pool.submit(run, cmd, cwd))
        results = {}
        for path, (cwd, flags, prelude) in chosen.items():
            if not prelude:
                results[path] = pool.submit(run, [clang] + flags + [path] + FLAGS, cwd)
        for path, (cwd, flags, prelude) in chosen.items():
            if prelude:
                pch, built = pchs[(tuple(flags), texts[prelude])]
                # Without a precompiled prelude (clang could not make one), it is parsed as text:
                # through -Xclang, so clang does not take g++'s .gch beside it for its own.
                use = ["-include-pch", pch] if built.result()[0] == 0 else ["-Xclang", "-include", "-Xclang", prelude]
                results[path] = pool.submit(run, [clang] + flags + use + [path] + FLAGS, cwd)
        problems = []
        for path in sorted(results):
            rc, text = results[path].result()
            if rc != 0:
                problems.append(f"{os.path.relpath(path, os.path.dirname(src))}: clang++ -Wthread-safety failed\n{text}")
    return len(chosen), problems


def self_test(clang):
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "src")
        os.makedirs(os.path.join(src, "common"))
        os.makedirs(os.path.join(src, "box"))
        real = os.path.join(SCRIPT_DIR, "..", "src", "common")
        for name in ("mutex.h", "thread_annotations.h"):
            shutil.copy(os.path.join(real, name), os.path.join(src, "common", name))

        def write(rel, text):
            with open(os.path.join(src, rel), "w") as f:
                f.write(text)

        # A class written the way nimbus's shared classes are; each planted file defines one of
        # its Bad* members, which breaks the contract once.
        write("box/box.h", """#pragma once
#include "common/mutex.h"
class Box {
 public:
  void Put(int v);
  int Take();
  int Peek() const;
  int BadRead() const;
  void BadCall();
  void BadAfterUnlock();
  void BadNotReleased();
 private:
  void AddLocked(int v) NIMBUS_REQUIRES(mu_);
  mutable nimbus::Mutex mu_;
  nimbus::CondVar cv_;
  int value_ NIMBUS_GUARDED_BY(mu_) = 0;
  bool full_ NIMBUS_GUARDED_BY(mu_) = false;
};
""")
        write("box/box.cc", """#include "box/box.h"
void Box::AddLocked(int v) { value_ += v; full_ = true; }
void Box::Put(int v) { nimbus::MutexLock lock(mu_); AddLocked(v); cv_.NotifyOne(); }
int Box::Take() {
  nimbus::MutexLock lock(mu_);
  while (!full_) cv_.Wait(mu_);
  full_ = false;
  int v = value_;
  lock.Unlock();
  return v;
}
int Box::Peek() const { nimbus::MutexLock lock(mu_); return value_; }
""")
        write("box/unrelated.cc", "int Unrelated() { return 1; }\n")
        write("box/box_test.cc", '#include "box/box.h"\nint Box::BadRead() const { return value_; }\n')
        planted = {
            "box/unguarded_read.cc": ("int Box::BadRead() const { return value_; }",
                                      "reading variable 'value_' requires holding mutex 'mu_'"),
            "box/locked_call.cc": ("void Box::BadCall() { AddLocked(1); }",
                                   "calling function 'AddLocked' requires holding mutex 'mu_'"),
            "box/after_unlock.cc": ("void Box::BadAfterUnlock() { nimbus::MutexLock lock(mu_); lock.Unlock(); full_ = false; }",
                                    "writing variable 'full_' requires holding mutex 'mu_'"),
            "box/not_released.cc": ("void Box::BadNotReleased() { mu_.Lock(); }",
                                    "mutex 'mu_' is still held at the end of function"),
        }
        # Some sources come with a CMake precompiled-header prelude, as in the real build, with
        # g++'s .gch beside it (here one clang cannot read: it must not try).
        prelude = os.path.join(tmp, "cmake_pch.hxx")
        with open(prelude, "w") as f:
            f.write("#pragma GCC system_header\n#include <vector>\n")
        with open(prelude + ".gch", "w") as f:
            f.write("not a clang precompiled header\n")
        with_prelude = ("box/box.cc", "box/unguarded_read.cc", "box/locked_call.cc")

        def commands(files):
            entries = [{"directory": tmp, "file": os.path.join(src, f),
                        "command": f"/usr/bin/c++ -I{src} -std=gnu++20 -Wall -Winvalid-pch " +
                                   (f"-include {prelude} " if f in with_prelude else "") +
                                   f"-o {f}.o -c {os.path.join(src, f)}"}
                       for f in files]
            with open(os.path.join(tmp, "compile_commands.json"), "w") as f:
                json.dump(entries, f)

        clean = ["box/box.cc", "box/unrelated.cc", "box/box_test.cc"]
        commands(clean)
        n, problems = check(tmp, src, clang, 2)
        if problems or n != 1:
            print(f"self-test: the clean tree was not passed with box.cc alone checked ({n} checked):\n" + "\n".join(problems))
            return 1
        for rel, (text, _) in planted.items():
            write(rel, '#include "box/box.h"\n' + text + "\n")
        commands(clean + list(planted))
        n, problems = check(tmp, src, clang, 2)
        found = "\n".join(problems)
        for rel, (_, expected) in planted.items():
            if not any(p.startswith(f"src/{rel}:") and expected in p for p in problems):
                print(f"self-test: missed '{expected}' in src/{rel}; found:\n{found}")
                return 1
        if len(problems) != len(planted):
            print(f"self-test: {len(problems)} problems for {len(planted)} planted violations:\n{found}")
            return 1
    print(f"self-test ok: {len(planted)} planted violations caught, the clean tree passed")
    return 0


def main():
    clang = find_clang()
    if clang is None:
        print(f"clang++ not found (looked for {os.environ.get('CLANGXX', '/usr/bin/clang++')}): the thread-safety "
              "check needs it; run scripts/install-deps.sh, or set CLANGXX to a clang++")
        return 1
    if sys.argv[1:] == ["--self-test"]:
        return self_test(clang)
    if len(sys.argv) not in (2, 3) or sys.argv[1].startswith("-"):
        print(__doc__.strip().split("\n\n")[2])
        return 2
    build = sys.argv[1]
    src = sys.argv[2] if len(sys.argv) > 2 else os.path.join(SCRIPT_DIR, "..", "src")
    if not os.path.isfile(os.path.join(build, "compile_commands.json")):
        print(f"{build}/compile_commands.json not found: configure the build with cmake first "
              "(the top-level CMakeLists.txt exports compile commands)")
        return 1
    start = time.monotonic()
    n, problems = check(build, src, clang, os.cpu_count() or 2)
    if n == 0:
        print(f"no source under {src} includes common/mutex.h per {build}/compile_commands.json: is that the "
              "right source tree and build?")
        return 1
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} of {n} sources break their threading annotations")
        return 1
    print(f"thread safety ok: {n} sources checked by {clang} -Wthread-safety in {time.monotonic() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
