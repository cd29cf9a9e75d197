#!/usr/bin/env python3
"""Build the bf16 GEMM library (stylize/backends/bf16/sgemm_bf16.c) for `--precision bf16`.

Run it with the interpreter of the virtualenv that runs stylize. It installs
oneDNN from PyPI (``onednn-cpu-gomp``: the library, into ``<venv>/lib``;
``onednn-devel-cpu-gomp``: its headers, into ``<venv>/include``) and
compiles the C source with this machine's gcc into
``<venv>/lib/libstylize_sgemm_bf16.so`` (rpath ``$ORIGIN``, beside
libdnnl). Idempotent: when the library was built from the same source and
oneDNN version it returns at once. On a machine without gcc it says so and
exits 0: stylize then runs in fp32 only and refuses `--precision bf16`.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "stylize" / "backends" / "bf16" / "sgemm_bf16.c"
ONEDNN = ["onednn-cpu-gomp==2023.2.0", "onednn-devel-cpu-gomp==2023.2.0"]
LIB_DIR = Path(sys.prefix) / "lib"
TARGET = LIB_DIR / "libstylize_sgemm_bf16.so"
STAMP = TARGET.with_suffix(".so.stamp")
FLAGS = ["-O3", "-fopenmp", "-fPIC", "-shared", "-Wall"]  # no -march: the C says which loops get AVX


def log(message: str) -> None:
    print(f"[bf16] {message}", flush=True)


def wanted() -> str:
    h = hashlib.sha256()
    for part in (SOURCE.read_text(), repr(ONEDNN), repr(FLAGS)):
        h.update(part.encode())
    return h.hexdigest()[:16]


def ensure_onednn() -> None:
    missing = []
    for requirement in ONEDNN:
        name, version = requirement.split("==")
        try:
            if importlib.metadata.version(name) == version:
                continue
        except importlib.metadata.PackageNotFoundError:
            pass
        missing.append(requirement)
    if missing:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", *missing], check=True)


def main() -> int:
    key = wanted()
    if TARGET.is_file() and STAMP.is_file() and STAMP.read_text().strip() == key:
        return 0
    gcc = shutil.which("gcc")
    if gcc is None:
        log("no gcc: --precision bf16 stays unavailable (fp32 only)")
        return 0
    ensure_onednn()
    include = Path(sys.prefix) / "include"
    if not (include / "oneapi" / "dnnl" / "dnnl.h").is_file() or not (LIB_DIR / "libdnnl.so.3").is_file():
        sys.exit(f"[bf16] oneDNN headers or library missing under {sys.prefix} after installing {ONEDNN}")
    partial = TARGET.with_suffix(".so.partial")
    command = [gcc, *FLAGS, f"-I{include}", str(SOURCE), "-o", str(partial), f"-L{LIB_DIR}",
               "-l:libdnnl.so.3", "-Wl,-rpath,$ORIGIN", "-ldl", "-lpthread"]
    log("$ " + " ".join(command))
    subprocess.run(command, check=True)
    os.replace(partial, TARGET)  # never a half-written library
    STAMP.write_text(key + "\n")
    log(f"built {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
