#!/usr/bin/env python3
"""Regenerate ``wizchat_management/models.py`` from the root ``openapi.json``.

Runs datamodel-codegen with exactly the flags the published SDK documents, so
the output is deterministic for a fixed ``openapi.json`` (tests/test_codegen.py
regenerates into a temporary file and compares it byte for byte).

    python scripts/gen.py                 # rewrite the committed models
    python scripts/gen.py --output FILE   # write elsewhere (used by the test)
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLAGS = [
    "--input-file-type", "openapi",
    "--output-model-type", "pydantic_v2.BaseModel",
    "--openapi-scopes", "schemas",
    "--use-annotated",
    "--field-constraints",
    "--use-standard-collections",
    "--target-python-version", "3.10",
    "--disable-timestamp",
    "--collapse-root-models",
    # openapi.json types an enum a newer server may extend as anyOf(the enum, NewerValue),
    # which makes the field ``Enum | str``: a value the enum does not list is kept as the
    # plain string. A str-based Enum compares equal to its value, so code can compare with
    # the wire string whichever of the two a field holds (README.md, "Newer enum values").
    "--use-subclass-enum",
    "--formatters", "black", "isort",
]


def codegen_command(output: Path) -> list[str]:
    exe = shutil.which("datamodel-codegen", path=str(Path(sys.executable).parent)) or shutil.which(
        "datamodel-codegen"
    )
    if exe is None:
        raise SystemExit("datamodel-codegen not found: pip install -e '.[dev]'")
    # Relative input path: the generator writes it into the file header, and an
    # absolute path would make the output depend on where the checkout lives.
    return [exe, "--input", "openapi.json", "--output", str(output), *FLAGS]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT / "wizchat_management" / "models.py")
    args = parser.parse_args(argv)
    return subprocess.run(codegen_command(args.output.resolve()), cwd=ROOT).returncode


if __name__ == "__main__":
    raise SystemExit(main())
