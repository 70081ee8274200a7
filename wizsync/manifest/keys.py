"""Read a tenant's API key for an environment, from the variable or file the manifest names.

The key is returned to the caller (the SDK client) and nowhere else: errors
name the tenant, the environment, the variable or file and the manifest line,
never the key.

A key is one token of printable ASCII. Surrounding whitespace (the newline
ending a key file, a variable set from ``$(cat file)``) is dropped; anything
else that is not printable ASCII (a second line, an embedded newline, a tab,
a control or non-ASCII byte) is refused here: sent as a header it would fail
in the HTTP layer, whose error quotes the whole header, key included.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from .model import Manifest

__all__ = ["read_api_key", "MAX_KEY_FILE_BYTES"]

# A key is about 50 bytes; a key file larger than this is the wrong file.
MAX_KEY_FILE_BYTES = 64 * 1024


def key_problem(value: str) -> str | None:
    """What is wrong with a (stripped) key, by position only; None if it is one printable token."""
    lines = len(value.splitlines())
    if lines > 1:
        return f"holds {lines} lines"
    for index, char in enumerate(value):
        if not "!" <= char <= "~":
            kind = (
                "whitespace" if char.isspace()
                else "a control character" if ord(char) < 0x20 or ord(char) == 0x7F else "a non-ASCII character"
            )
            return f"holds {kind} (character {index + 1} of {len(value)})"
    return None


def read_api_key(manifest: Manifest, tenant: str, environment: str, environ: Mapping[str, str] | None = None) -> str:
    """The API key of ``tenant`` in ``environment``; ``ManifestError`` if it cannot be read."""
    environ = os.environ if environ is None else environ
    spec = manifest.tenants.get(tenant)
    if spec is None:
        raise manifest.error(("tenants",), f"unknown tenant '{tenant}'")
    ref = spec.keys.get(environment)
    path = ("tenants", tenant, "keys", environment)
    if ref is None:
        raise manifest.error(
            ("tenants", tenant, "keys"),
            f"tenant '{tenant}' has no key for environment '{environment}'",
            f"Add keys.{environment}: {{env: VARIABLE_NAME}} or {{file: path}} to tenant '{tenant}'",
        )
    if ref.env is not None:
        value = environ.get(ref.env, "").strip()
        if not value:
            raise manifest.error(
                path + ("env",),
                f"environment variable {ref.env} (the API key of tenant '{tenant}' in '{environment}') is not set",
                f"Export {ref.env} before running wizsync",
            )
        problem = key_problem(value)
        if problem:
            raise manifest.error(
                path + ("env",),
                f"refused: environment variable {ref.env} (the API key of tenant '{tenant}' in '{environment}') "
                f"{problem}; an API key is one token of printable ASCII",
                f"Set {ref.env} to the key alone (no quotes, spaces or line breaks); its value is never shown",
            )
        return value
    assert ref.file is not None
    file = manifest.base_dir / ref.file
    try:
        with file.open("rb") as handle:
            raw = handle.read(MAX_KEY_FILE_BYTES + 1)
        if len(raw) > MAX_KEY_FILE_BYTES:
            raise manifest.error(path + ("file",), f"refused: key file '{ref.file}' is larger than {MAX_KEY_FILE_BYTES:,} bytes",
                                 "Point it at the file holding the key alone")
        value = raw.decode("utf-8").strip()
    except FileNotFoundError:
        raise manifest.error(path + ("file",), f"key file '{ref.file}' not found (looked in {manifest.base_dir})",
                             "Key file paths are relative to the manifest's directory") from None
    except IsADirectoryError:
        raise manifest.error(path + ("file",), f"key file '{ref.file}' is a directory, not a file",
                             "Point it at the file holding the key") from None
    except PermissionError:
        raise manifest.error(path + ("file",), f"key file '{ref.file}' is not readable", "Check its permissions") from None
    except UnicodeDecodeError:
        raise manifest.error(path + ("file",), f"refused: key file '{ref.file}' holds a byte that is not text "
                             "(an API key is one token of printable ASCII)",
                             "Write the key alone into the file; its content is never shown") from None
    except OSError:
        raise manifest.error(path + ("file",), f"key file '{ref.file}' cannot be read") from None
    if not value:
        raise manifest.error(path + ("file",), f"key file '{ref.file}' is empty", "Write the tenant's API key into it")
    problem = key_problem(value)
    if problem:
        raise manifest.error(
            path + ("file",),
            f"refused: key file '{ref.file}' (the API key of tenant '{tenant}' in '{environment}') {problem}; "
            "an API key is one token of printable ASCII",
            "Keep only the key in the file: no comment lines, quotes or spaces; its content is never shown",
        )
    return value
