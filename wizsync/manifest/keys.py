"""Read a tenant's API key for an environment, from the variable or file the manifest names.

The key is returned to the caller (the SDK client) and nowhere else: errors
name the tenant, the environment, the variable or file and the manifest line,
never the key.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from .model import Manifest

__all__ = ["read_api_key"]


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
        return value
    assert ref.file is not None
    file = manifest.base_dir / ref.file
    try:
        value = file.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise manifest.error(path + ("file",), f"key file '{ref.file}' not found (looked in {manifest.base_dir})",
                             "Key file paths are relative to the manifest's directory") from None
    except IsADirectoryError:
        raise manifest.error(path + ("file",), f"key file '{ref.file}' is a directory, not a file",
                             "Point it at the file holding the key") from None
    except PermissionError:
        raise manifest.error(path + ("file",), f"key file '{ref.file}' is not readable", "Check its permissions") from None
    except (OSError, UnicodeDecodeError):
        raise manifest.error(path + ("file",), f"key file '{ref.file}' cannot be read as text") from None
    if not value:
        raise manifest.error(path + ("file",), f"key file '{ref.file}' is empty", "Write the tenant's API key into it")
    return value
