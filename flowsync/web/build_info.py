"""What the committed UI build was made from: `dist/BUILD.json` holds a sha256 of the
inputs of the build (every source file under `web/`) and the list of files it wrote.

A Node-free test recomputes the hash, so a change to `web/` without a rebuild fails the
suite; CI also rebuilds and compares the output byte for byte.

    python -m flowsync.web.build_info write   # after `npm run build` (./run build-web does it)
    python -m flowsync.web.build_info check   # exit 1, saying why, when the build is stale
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["BUILD_FILE", "EXCLUDED", "build_files", "check", "inputs_hash", "read", "write"]

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
DIST = Path(__file__).resolve().parent / "dist"
BUILD_FILE = "BUILD.json"

# What is not an input of the build: installed packages, outputs, caches and editor
# leftovers (the same as web/.gitignore, kept as a fixed list on purpose). A pattern
# without a slash matches a file or folder name anywhere below web/.
EXCLUDED = (
    "node_modules",
    "dist",
    "coverage",
    "*.tsbuildinfo",
    ".vite",
    ".eslintcache",
    "test-results",
    "playwright-report",
    "*.log",
    ".DS_Store",
    "*.swp",
    "*~",
)


def _excluded(name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in EXCLUDED)


def _inputs(web_dir: Path) -> list[tuple[str, Path]]:
    found: list[tuple[str, Path]] = []
    for folder, dirs, files in os.walk(web_dir):
        dirs[:] = [d for d in dirs if not _excluded(d)]  # never walk node_modules
        for name in files:
            path = Path(folder, name)
            if not _excluded(name) and path.is_file():
                found.append((path.relative_to(web_dir).as_posix(), path))
    return sorted(found)


def inputs_hash(web_dir: Path) -> str:
    """The sha256 (hex) of the sorted relative paths and contents of every input file
    under `web_dir`. The same tree gives the same hash on any machine."""
    digest = hashlib.sha256()
    for relative, path in _inputs(web_dir):
        content = path.read_bytes()
        # Each part with its length, so that no two trees can feed the same bytes.
        for part in (relative.encode(), content):
            digest.update(len(part).to_bytes(8, "big"))
            digest.update(part)
    return digest.hexdigest()


def build_files(dist_dir: Path) -> list[str]:
    """The files of the build (relative, sorted), BUILD.json aside."""
    return sorted(
        p.relative_to(dist_dir).as_posix()
        for p in dist_dir.rglob("*")
        if p.is_file() and p.relative_to(dist_dir).as_posix() != BUILD_FILE
    )


def read(dist_dir: Path) -> dict[str, Any] | None:
    """BUILD.json's content, or None when there is none."""
    try:
        loaded: dict[str, Any] = json.loads((dist_dir / BUILD_FILE).read_text())
    except FileNotFoundError:
        return None
    return loaded


def write(web_dir: Path, dist_dir: Path) -> dict[str, Any]:
    """Write BUILD.json for the build in `dist_dir` made from `web_dir`; its content."""
    if not (dist_dir / "index.html").is_file():
        raise SystemExit(f"{dist_dir}/index.html is missing: build the UI first (npm run build)")
    info = {"inputsSha256": inputs_hash(web_dir), "files": build_files(dist_dir)}
    (dist_dir / BUILD_FILE).write_text(json.dumps(info, indent=2) + "\n")
    return info


def check(web_dir: Path, dist_dir: Path) -> list[str]:
    """What is wrong with the build in `dist_dir` for the sources in `web_dir` (empty
    when it is fresh)."""
    info = read(dist_dir)
    if info is None:
        return [f"{dist_dir / BUILD_FILE} is missing"]
    problems = []
    expected = inputs_hash(web_dir)
    if info.get("inputsSha256") != expected:
        problems.append(
            f"web/ has changed since the build: its inputs hash to {expected}, "
            f"BUILD.json says {info.get('inputsSha256')}"
        )
    listed, present = set(info.get("files", [])), set(build_files(dist_dir))
    if missing := sorted(listed - present):
        problems.append(f"files of the build are missing from {dist_dir}: {missing}")
    if extra := sorted(present - listed):
        problems.append(f"files in {dist_dir} that the build did not write: {extra}")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flowsync.web.build_info")
    parser.add_argument("action", choices=["write", "check"])
    parser.add_argument("--web", type=Path, default=WEB, help="the UI's source folder")
    parser.add_argument("--dist", type=Path, default=DIST, help="the build's folder")
    args = parser.parse_args(argv)
    if not args.web.is_dir():
        print(f"error: {args.web} is not a folder (the UI's sources)", file=sys.stderr)
        return 2
    if args.action == "write":
        info = write(args.web, args.dist)
        print(
            f"{args.dist / BUILD_FILE}: {len(info['files'])} files, inputs {info['inputsSha256']}"
        )
        return 0
    problems = check(args.web, args.dist)
    for problem in problems:
        print(f"the UI build is stale: {problem}", file=sys.stderr)
    if problems:
        print("run ./run build-web", file=sys.stderr)
        return 1
    print("the UI build is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
