"""The manifest (``version: 1``) as Pydantic v2 models: the public schema.

Field names are the YAML keys of the product spec (camelCase where the spec
uses it). Every model forbids unknown keys. Cross-references (a chatbot's
tenant exists, an overlay names a known environment...) are checked after
validation by ``references.check_references``, where the key's line is known.
"""

from __future__ import annotations

import re
import zlib
from fractions import Fraction
from typing import Any, Literal, Optional, Union

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from wizchat_management import DEFAULT_BASE_URL, SECTIONS, SectionName

from .errors import ManifestError

__all__ = [
    "DEFAULT_WAVE",
    "Manifest",
    "Environment",
    "Tenant",
    "KeyRef",
    "TargetPin",
    "RateLimitHint",
    "Source",
    "Defaults",
    "DocumentPatch",
    "SpecPatch",
    "Discover",
    "ChatbotEntry",
    "Rollout",
    "Vars",
]

DEFAULT_WAVE = "default"

Scalar = Union[str, int, float, bool, None]
Vars = dict[str, Scalar]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_LABEL_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./-]*$")
_ALLOW_ENTRY = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$-]*(\.[A-Za-z_$][A-Za-z0-9_$-]*)*$")
# The one percent grammar, in the manifest and on the command line alike (docs/manifest.md):
# digits, an optional decimal part, then '%' ("10%", "0.5%", "12.5 %"); not ".5%", "1e1%" or "+5%".
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=False)


def _check_vars(value: dict[str, Any]) -> dict[str, Any]:
    for name in value:
        if not isinstance(name, str) or not _VAR_NAME.match(name):
            raise ValueError(
                f"variable name {name!r} is not valid: use letters, digits, '_', '.' or '-', starting with a letter or '_'"
            )
    return value


def parse_percent(value: str) -> Fraction | None:
    """``"10%"`` → 10, ``"12.5%"`` → 25/2 (exact: 64.4% of 250 must not round up to 162); anything else → None."""
    match = _PERCENT.match(value)
    return Fraction(match.group(1)) if match else None


class Environment(_Model):
    """One target environment (``staging``, ``production``...)."""

    description: Optional[str] = None
    baseUrl: str = DEFAULT_BASE_URL
    protected: bool = False
    vars: Vars = Field(default_factory=dict)

    _v = field_validator("vars")(_check_vars)

    @field_validator("baseUrl")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("baseUrl must be an http(s) URL such as https://www.wizchat.com")
        return value.rstrip("/")


class KeyRef(_Model):
    """Where an API key comes from: an environment variable or a file (never the key itself)."""

    env: Optional[str] = None
    file: Optional[str] = None

    @model_validator(mode="before")
    @classmethod
    def _not_inline(cls, value: Any) -> Any:
        if isinstance(value, str):
            # Never echo the value: it may be a real key.
            raise ValueError(
                "an API key must never be written in the manifest; "
                "use {env: VARIABLE_NAME} or {file: path/to/keyfile}"
            )
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> "KeyRef":
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of env (a variable name) or file (a path)")
        if self.env is not None and not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", self.env):
            raise ValueError("env must be the NAME of an environment variable (letters, digits and '_')")
        return self


class RateLimitHint(_Model):
    """Optional pacing hint for a tenant's keys; the server's X-RateLimit-* headers win."""

    perSecond: float = Field(gt=0)
    burst: int = Field(default=1, ge=1)


class TargetPin(_Model):
    """What a tenant's key must see in one environment (``tenants.<t>.expect.<env>``): checked before any change."""

    chatbots: list[str] = Field(default_factory=list, min_length=1)


class Tenant(_Model):
    """A customer organization: one API key per environment."""

    description: Optional[str] = None
    keys: dict[str, KeyRef] = Field(default_factory=dict)
    expect: dict[str, TargetPin] = Field(default_factory=dict)
    vars: Vars = Field(default_factory=dict)
    rateLimit: Optional[RateLimitHint] = None

    _v = field_validator("vars")(_check_vars)


class Source(_Model):
    """Where a chatbot's desired config comes from: exactly one of file, environment, self."""

    file: Optional[str] = None
    environment: Optional[str] = None
    self_: Optional[bool] = Field(default=None, alias="self")

    @model_validator(mode="after")
    def _exactly_one(self) -> "Source":
        given = [k for k, v in (("file", self.file), ("environment", self.environment), ("self", self.self_)) if v is not None]
        if len(given) != 1:
            raise ValueError(
                "a source is exactly one of {file: path}, {environment: name} or {self: true}"
                + (f" (got {', '.join(given)})" if given else "")
            )
        if self.self_ is False:
            raise ValueError("write {self: true} (self: false is not a source)")
        return self

    @property
    def kind(self) -> Literal["file", "environment", "self"]:
        return "file" if self.file is not None else "environment" if self.environment is not None else "self"


class SpecPatch(_Model):
    """A partial ``spec``: the six sections, free-form here. Checked against the contract after
    rendering (``wizsync.render.authoring``), where a section this wizsync does not know is
    an error with a did-you-mean, or allowed by ``allowUnknown``."""

    model_config = ConfigDict(extra="allow")

    core: Any = None
    security: Any = None
    telemetry: Any = None
    mcpServers: Any = None
    skills: Any = None
    domains: Any = None


class DocumentPatch(_Model):
    """An overlay or override: a partial ChatbotConfigDocument (``spec: {...}``)."""

    apiVersion: Optional[Literal["wizchat.com/v1"]] = None
    kind: Optional[Literal["ChatbotConfig"]] = None
    spec: Optional[SpecPatch] = None


class Defaults(_Model):
    source: Optional[Source] = None
    sections: list[SectionName] = Field(default_factory=lambda: list(SECTIONS))
    prune: bool = True


class Discover(_Model):
    """Every chatbot of ``tenant`` whose name matches the glob ``match``."""

    tenant: str
    match: str = "*"
    # How many chatbots it is expected to find: only balances `--shard` (sizes are unknown before listing).
    shardWeight: int = Field(default=1, ge=1, le=1_000_000)

    @field_validator("match")
    @classmethod
    def _glob(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("match must be a non-empty glob such as 'support-*'")
        depth = 0
        for char in value:
            depth += char == "["
            depth -= char == "]" and depth > 0
        if depth:
            raise ValueError("match has an unclosed '[' (a glob character class)")
        return value


class ChatbotEntry(_Model):
    """One chatbot (``name`` + ``tenant``) or a ``discover`` rule, with the same optional fields."""

    name: Optional[str] = None
    tenant: Optional[str] = None
    ids: dict[str, str] = Field(default_factory=dict)
    discover: Optional[Discover] = None
    description: Optional[str] = None
    source: Optional[Source] = None
    labels: dict[str, str] = Field(default_factory=dict)
    wave: Optional[str] = None
    vars: Vars = Field(default_factory=dict)
    overrides: dict[str, DocumentPatch] = Field(default_factory=dict)
    sections: Optional[list[SectionName]] = None
    prune: Optional[bool] = None

    _v = field_validator("vars")(_check_vars)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not _NAME.match(value):
            raise ValueError("a chatbot name uses letters, digits, '_', '.' or '-' and starts with a letter or digit")
        return value

    @field_validator("labels", mode="before")
    @classmethod
    def _labels(cls, value: Any) -> Any:
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str) or not _LABEL_KEY.match(key):
                    raise ValueError(f"label key {key!r} is not valid (letters, digits, '_', '.', '/', '-')")
                if isinstance(item, (int, float, bool)):
                    raise ValueError(f"label {key!r} must be a string: quote it")
        return value

    @field_validator("ids")
    @classmethod
    def _ids(cls, value: dict[str, str]) -> dict[str, str]:
        for env, chatbot_id in value.items():
            if not chatbot_id.strip():
                raise ValueError(f"ids.{env} is empty")
        return value

    @model_validator(mode="after")
    def _shape(self) -> "ChatbotEntry":
        if self.discover is not None:
            extra = [k for k in ("name", "tenant") if getattr(self, k) is not None] + (["ids"] if self.ids else [])
            if extra:
                raise ValueError(
                    f"a discover entry takes no {', '.join(extra)}: the tenant is discover.tenant "
                    "and each matching chatbot's address is tenant/name"
                )
        else:
            missing = [k for k in ("name", "tenant") if getattr(self, k) is None]
            if missing:
                raise ValueError(
                    f"a chatbot entry needs {' and '.join(missing)} (or use discover: {{tenant, match}})"
                )
        return self


def _check_batch(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("a batch size is a positive integer or a percentage such as \"10%\"")
    if isinstance(value, int):
        if value < 1:
            raise ValueError(f"batch size {value} must be at least 1")
        return value
    if isinstance(value, str):
        pct = parse_percent(value)
        if pct is None or not 0 < pct <= 100:
            raise ValueError(f"batch size {value!r} must be a positive integer or a percentage in (0%, 100%]")
        return value.strip()
    raise ValueError("a batch size is a positive integer or a percentage such as \"10%\"")


class Rollout(_Model):
    """Order and pacing of an apply."""

    waves: list[str] = Field(default_factory=lambda: [DEFAULT_WAVE])
    batches: list[Union[int, str]] = Field(default_factory=lambda: list[Union[int, str]](["100%"]))
    maxFailures: Union[int, str] = 0
    concurrency: int = Field(default=16, ge=1, le=1024)

    @field_validator("batches", mode="before")
    @classmethod
    def _batches(cls, value: Any) -> Any:
        if isinstance(value, list):
            if not value:
                raise ValueError("batches must list at least one size, e.g. [1, \"10%\", \"100%\"]")
            return [_check_batch(v) for v in value]
        return value

    @field_validator("maxFailures", mode="before")
    @classmethod
    def _max_failures(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("maxFailures is a count (0, 3) or a percentage (\"5%\")")
        if isinstance(value, int):
            if value < 0:
                raise ValueError("maxFailures must be 0 or more")
            return value
        if isinstance(value, str):
            pct = parse_percent(value)
            if pct is None or not 0 <= pct <= 100:
                raise ValueError(f"maxFailures {value!r} must be a count (0, 3) or a percentage in [0%, 100%]")
            return value.strip()
        raise ValueError("maxFailures is a count (0, 3) or a percentage (\"5%\")")

    @field_validator("waves")
    @classmethod
    def _waves(cls, value: list[str]) -> list[str]:
        dupes = sorted({w for w in value if value.count(w) > 1})
        if dupes:
            raise ValueError(f"wave {dupes[0]!r} is listed twice")
        return value

    @property
    def ordered_waves(self) -> list[str]:
        """``waves`` with the implicit ``default`` wave last when not listed."""
        return self.waves if DEFAULT_WAVE in self.waves else [*self.waves, DEFAULT_WAVE]


def check_allow_unknown(value: list[str]) -> list[str]:
    """``allowUnknown`` entries are document paths from the root: ``spec.core.newField``."""
    for entry in value:
        if not _ALLOW_ENTRY.match(entry):
            raise ValueError(
                f"allowUnknown entry {entry!r} is not a dotted key path such as spec.core.newField (no item indexes)"
            )
        first = entry.split(".", 1)[0]
        if first in SECTIONS:
            raise ValueError(f"allowUnknown entry {entry!r} starts at the document root: write spec.{entry}")
    return value


class Manifest(_Model):
    """A whole ``wizsync.yaml``. ``path``/``base_dir`` are set by ``load_manifest``."""

    version: Literal[1]
    description: Optional[str] = None
    environments: dict[str, Environment] = Field(min_length=1)
    tenants: dict[str, Tenant] = Field(min_length=1)
    vars: Vars = Field(default_factory=dict)
    defaults: Defaults = Field(default_factory=Defaults)
    overlays: dict[str, DocumentPatch] = Field(default_factory=dict)
    chatbots: list[ChatbotEntry] = Field(default_factory=list)
    rollout: Rollout = Field(default_factory=Rollout)
    # Fields newer than this wizsync, accepted as written in every document (docs/manifest.md).
    allowUnknown: list[str] = Field(default_factory=list)
    # Folders outside the manifest's own that file sources may be read from (docs/manifest.md).
    fileRoots: list[str] = Field(default_factory=list)

    _v = field_validator("vars")(_check_vars)
    _a = field_validator("allowUnknown")(check_allow_unknown)

    @field_validator("fileRoots")
    @classmethod
    def _file_roots(cls, value: list[str]) -> list[str]:
        for root in value:
            if not root.strip():
                raise ValueError("a fileRoots entry is a folder path (relative to the manifest's folder, or absolute)")
        return value

    @field_validator("tenants", "environments")
    @classmethod
    def _folder_names(cls, value: dict[str, Any], info: Any) -> dict[str, Any]:
        # A tenant name is the first half of every address (tenant/name), and both name folders
        # (export's DIR/<env>/<tenant>/): no '/', '..' or spaces in them.
        what = "tenant" if info.field_name == "tenants" else "environment"
        for name in value:
            if not _NAME.match(name):
                raise ValueError(
                    f"{what} name {name!r} is not valid: use letters, digits, '_', '.' or '-', starting with a letter or digit"
                )
        return value

    # Where it was loaded from, for errors raised after loading (render, keys).
    _file: str = PrivateAttr(default="<manifest>")
    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)
    # The line of every key path, built from the manifest's text on first use (an error): a fleet's
    # manifest holds five keys per chatbot, and a run that finds nothing wrong never asks for one.
    _lines: dict[tuple[Any, ...], int] | None = PrivateAttr(default=None)
    _text: bytes | None = PrivateAttr(default=None)  # zlib of the UTF-8 text it was loaded from

    def keep_text(self, text: str) -> None:
        """Keep ``text`` (what this manifest was loaded from) for the line index, compressed."""
        self._text = zlib.compress(text.encode("utf-8"), 1)
        self._lines = None

    @property
    def file(self) -> str:
        """The manifest path as the user gave it (for messages)."""
        return self._file

    @property
    def base_dir(self) -> Path:
        """Directory relative file paths (sources, key files) are resolved against."""
        return self._base_dir

    def line_of(self, path: "tuple[Any, ...] | list[Any]") -> int | None:
        """Line of a key path in the manifest, or of its nearest located ancestor."""
        if self._lines is None:
            from .yaml_marks import located_lines  # yaml: only when an error needs a line

            text = zlib.decompress(self._text).decode("utf-8") if self._text is not None else ""
            self._lines = located_lines(text, self._file) if text else {}
        path = tuple(path)
        while path:
            if path in self._lines:
                return self._lines[path]
            path = path[:-1]
        return None

    def error(self, path: "tuple[Any, ...] | list[Any]", message: str, hint: str | None = None) -> ManifestError:
        """A ``ManifestError`` located at ``path`` in this manifest."""
        return ManifestError(message, file=self._file, line=self.line_of(path), key=tuple(path) or None, hint=hint)
