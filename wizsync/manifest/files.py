"""Where a ``file`` source may be read from: the manifest's folder tree, or a root it allows.

A manifest is often written by someone else (a pull request the CI plans),
so its file sources must not reach the rest of the machine: ``../../etc``,
an absolute path, or a symlink inside the tree that points out are refused
before anything is read, unless ``fileRoots`` names the folder they are in.
Paths are compared after resolving every symlink (``os.path.realpath``).
"""

from __future__ import annotations

import os
from pathlib import Path

from .model import Manifest

__all__ = ["OutsideRoots", "allowed_roots", "confined_source"]


class OutsideRoots(ValueError):
    """A file source resolves outside every allowed root; ``str()`` says why, never the content."""


_memo: dict[tuple[str, tuple[str, ...], str], Path] = {}


def allowed_roots(manifest: Manifest) -> list[str]:
    """The manifest's folder and each ``fileRoots`` entry (relative to it), symlinks resolved."""
    base = os.path.realpath(manifest.base_dir)
    return [base, *(os.path.realpath(os.path.join(base, root)) for root in manifest.fileRoots)]


def confined_source(manifest: Manifest, relative: str) -> Path:
    """The real path of the source file ``relative``; ``OutsideRoots`` if it leaves the allowed roots.

    Memoised per manifest folder, roots and path: 10,000 chatbots sharing one
    file resolve it once (``realpath`` is an lstat per path component).
    """
    key = (str(manifest.base_dir), tuple(manifest.fileRoots), relative)
    hit = _memo.get(key)
    if hit is not None:
        return hit
    roots = allowed_roots(manifest)
    literal = os.path.normpath(os.path.join(roots[0], relative))
    real = os.path.realpath(literal)
    if not any(_inside(real, root) for root in roots):
        through = " through a symlink" if any(_inside(literal, root) for root in roots) else ""
        allowed = "the manifest's folder" + (" or fileRoots" if manifest.fileRoots else "")
        raise OutsideRoots(f"source file '{relative}' is outside {allowed}{through}")
    path = Path(real)
    _memo[key] = path
    return path


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)
