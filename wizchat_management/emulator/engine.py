"""The apply engine: validation, plans, execution and redaction (openapi.json, the apply operation).

Pure functions over plain JSON values; no HTTP, no storage. ``plan_apply``
validates the whole document and computes the plan without touching the
chatbot; ``execute`` runs it in section order and stops at the first run-time
failure, keeping what ran before.
"""

from __future__ import annotations

import copy
import ipaddress
import math
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ..vocabulary import APPLY_ORDER, ARRAY_SECTIONS, ITEM_KEYS, OBJECT_SECTIONS, REDACTED, SECTIONS

API_VERSION = "wizchat.com/v1"
KIND = "ChatbotConfig"

# Item defaults filled in before comparing (openapi.json `default`s).
ITEM_DEFAULTS: dict[str, dict[str, Any]] = {
    "mcpServers": {"enabled": True},
    "skills": {"enabled": True},
    "domains": {},
}
READ_SCOPE = {
    "core": "chatbots:read",
    "telemetry": "chatbots:read",
    "security": "security:read",
    "mcpServers": "mcp:read",
    "skills": "skills:read",
    "domains": "domains:read",
}
WRITE_SCOPE = {s: v.replace(":read", ":write") for s, v in READ_SCOPE.items()}
# Scopes get_config needs: chatbots:read plus every section's read scope.
CONFIG_READ_SCOPES: tuple[str, ...] = ("chatbots:read", "security:read", "domains:read", "mcp:read", "skills:read")

_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


class ApplyValidationError(Exception):
    """The document is invalid: ``errors`` is ``[{path, message}]``; nothing was applied."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        super().__init__(f"{len(errors)} validation error(s)")
        self.errors = errors


# -- validation -------------------------------------------------------------


def _is_int(v: Any) -> bool:
    # JSON Schema counts 60.0 as an integer (a number with no fractional part), so the contract does.
    if isinstance(v, float):
        return math.isfinite(v) and v.is_integer()
    return isinstance(v, int) and not isinstance(v, bool)


# The integer-typed keys of object sections (openapi.json), stored as ints whatever the JSON spelling.
INTEGER_KEYS: dict[str, tuple[str, ...]] = {"security": ("rateLimitPerMinute",)}


def with_integers(section: str, value: Any) -> Any:
    """``value`` with 60.0 stored as 60 in the section's integer keys (so both are one value everywhere)."""
    keys = INTEGER_KEYS.get(section, ())
    if not isinstance(value, dict) or not any(isinstance(value.get(k), float) for k in keys):
        return value
    return {k: int(v) if k in keys and isinstance(v, float) else v for k, v in value.items()}


def _is_number(v: Any) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) and math.isfinite(v)


def is_loopback_host(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_error(value: str) -> str | None:
    """None if ``value`` is an https URL, or an http URL on loopback."""
    try:
        parts = urlsplit(value)
        host = parts.hostname
        parts.port  # raises on a bad port
    except ValueError:
        return "not a valid URL"
    if not host:
        return "not a valid URL (no host)"
    if parts.scheme == "https":
        return None
    if parts.scheme == "http" and is_loopback_host(host):
        return None
    return "must be an https URL (http is allowed only on loopback)"


def is_dns_name(value: str) -> bool:
    if not value or len(value) > 253:
        return False
    return all(_LABEL.match(label) for label in value.split("."))


class _Validator:
    def __init__(self) -> None:
        self.errors: list[dict[str, str]] = []

    def err(self, path: str, message: str) -> None:
        self.errors.append({"path": path, "message": message})

    def opt(self, obj: dict[str, Any], key: str, path: str, kind: str, nullable: bool = True) -> Any:
        """Check ``obj[key]`` (when present) is of ``kind``; returns the value or None."""
        if key not in obj:
            return None
        v = obj[key]
        p = f"{path}.{key}"
        if v is None:
            if not nullable:
                self.err(p, f"must be {kind}, not null")
            return None
        ok = {
            "a string": isinstance(v, str),
            "a boolean": isinstance(v, bool),
            "an integer": _is_int(v),
            "a number": _is_number(v),
            "an object": isinstance(v, dict),
            "an array of strings": isinstance(v, list) and all(isinstance(x, str) for x in v),
        }[kind]
        if not ok:
            self.err(p, f"must be {kind}")
            return None
        return v


@dataclass(frozen=True)
class EnumValues:
    """The values of the contract's open enums this server accepts (openapi.json, ``NewerValue``).

    The contract's own by default; a seed's ``newerValues`` adds more, so the
    emulator can play a server newer than its clients.
    """

    transports: tuple[str, ...] = ("http", "sse")
    statuses: tuple[str, ...] = ("active", "paused")

    def plus(self, transports: tuple[str, ...] = (), statuses: tuple[str, ...] = ()) -> "EnumValues":
        return EnumValues(
            tuple(dict.fromkeys((*self.transports, *transports))), tuple(dict.fromkeys((*self.statuses, *statuses)))
        )


CONTRACT_VALUES = EnumValues()


def one_of(values: tuple[str, ...]) -> str:
    return " or ".join(repr(v) for v in values)


def validate_document(doc: Any, values: EnumValues = CONTRACT_VALUES) -> list[dict[str, str]]:
    """Every error of the document (types per openapi.json and the spec's rules)."""
    v = _Validator()
    if not isinstance(doc, dict):
        v.err("", "the document must be a JSON object")
        return v.errors
    if doc.get("apiVersion") != API_VERSION:
        v.err("apiVersion", f"must be {API_VERSION!r}")
    if doc.get("kind") != KIND:
        v.err("kind", f"must be {KIND!r}")
    meta = doc.get("metadata")
    if meta is not None:
        if not isinstance(meta, dict):
            v.err("metadata", "must be an object or null")
        else:
            v.opt(meta, "chatbotId", "metadata", "a string", nullable=False)
            v.opt(meta, "name", "metadata", "a string", nullable=False)
            rev = v.opt(meta, "revision", "metadata", "an integer", nullable=False)
            if rev is not None and rev < 0:
                v.err("metadata.revision", "must be >= 0")
            v.opt(meta, "exportedAt", "metadata", "a string", nullable=False)
    if "spec" not in doc:
        v.err("spec", "is required")
        return v.errors
    spec = doc["spec"]
    if not isinstance(spec, dict):
        v.err("spec", "must be an object")
        return v.errors
    _validate_core(v, spec)
    _validate_security(v, spec)
    _validate_telemetry(v, spec)
    for section in ARRAY_SECTIONS:
        _validate_array(v, spec, section, values)
    return v.errors


def _section(v: _Validator, spec: dict[str, Any], name: str, kind: str) -> Any:
    value = spec.get(name)
    if value is None:
        return None
    if kind == "object" and not isinstance(value, dict):
        v.err(f"spec.{name}", "must be an object or null")
        return None
    if kind == "array" and not isinstance(value, list):
        v.err(f"spec.{name}", "must be an array or null")
        return None
    return value


def _validate_core(v: _Validator, spec: dict[str, Any]) -> None:
    core = _section(v, spec, "core", "object")
    if core is None:
        return
    p = "spec.core"
    if "name" in core:
        name = core["name"]
        if not isinstance(name, str) or not name.strip():
            v.err(f"{p}.name", "must be a non-empty string")
    for key in ("description", "model", "systemPrompt", "welcomeMessage", "language"):
        v.opt(core, key, p, "a string")
    t = v.opt(core, "temperature", p, "a number")
    if t is not None and not 0 <= t <= 2:
        v.err(f"{p}.temperature", "must be between 0 and 2")


def _validate_security(v: _Validator, spec: dict[str, Any]) -> None:
    sec = _section(v, spec, "security", "object")
    if sec is None:
        return
    p = "spec.security"
    v.opt(sec, "allowedOrigins", p, "an array of strings")
    v.opt(sec, "requireAuth", p, "a boolean")
    rpm = v.opt(sec, "rateLimitPerMinute", p, "an integer")
    if rpm is not None and rpm < 0:
        v.err(f"{p}.rateLimitPerMinute", "must be >= 0")
    v.opt(sec, "webhookSecret", p, "a string")


def _validate_telemetry(v: _Validator, spec: dict[str, Any]) -> None:
    tel = _section(v, spec, "telemetry", "object")
    if tel is None:
        return
    p = "spec.telemetry"
    v.opt(tel, "enabled", p, "a boolean")
    rate = v.opt(tel, "sampleRate", p, "a number")
    if rate is not None and not 0 <= rate <= 1:
        v.err(f"{p}.sampleRate", "must be between 0 and 1")
    url = v.opt(tel, "exportUrl", p, "a string")
    if url is not None and (msg := url_error(url)):
        v.err(f"{p}.exportUrl", msg)


def _validate_array(v: _Validator, spec: dict[str, Any], section: str, values: EnumValues) -> None:
    items = _section(v, spec, section, "array")
    if items is None:
        return
    key_field = ITEM_KEYS[section]
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        p = f"spec.{section}[{i}]"
        if not isinstance(item, dict):
            v.err(p, "must be an object")
            continue
        key = item.get(key_field)
        if not isinstance(key, str) or not key:
            v.err(f"{p}.{key_field}", "is required and must be a non-empty string")
        else:
            if key in seen:
                v.err(f"{p}.{key_field}", f"duplicate {key_field} {key!r} (also at index {seen[key]})")
            else:
                seen[key] = i
        if section == "mcpServers":
            url = item.get("url")
            if not isinstance(url, str):
                v.err(f"{p}.url", "is required and must be a string")
            elif msg := url_error(url):
                v.err(f"{p}.url", msg)
            if "transport" in item and item["transport"] not in values.transports:
                v.err(f"{p}.transport", f"must be {one_of(values.transports)}")
            v.opt(item, "enabled", p, "a boolean", nullable=False)
            headers = v.opt(item, "headers", p, "an object", nullable=False)
            if headers is not None:
                for h, hv in headers.items():
                    if not isinstance(hv, str):
                        v.err(f"{p}.headers.{h}", "must be a string")
            v.opt(item, "allowedTools", p, "an array of strings")
        elif section == "skills":
            v.opt(item, "description", p, "a string", nullable=False)
            v.opt(item, "instructions", p, "a string", nullable=False)
            v.opt(item, "enabled", p, "a boolean", nullable=False)
            v.opt(item, "triggers", p, "an array of strings", nullable=False)
        else:
            if isinstance(key, str) and key and not is_dns_name(key):
                v.err(f"{p}.hostname", "must be a valid DNS name")
            v.opt(item, "primary", p, "a boolean", nullable=False)


# -- plan -------------------------------------------------------------------


@dataclass
class PlannedOp:
    """One operation of a plan, with the value to write when it runs."""

    op: str
    section: str
    key: str | None
    changes: list[dict[str, Any]] | None
    new_value: Any = None  # the section (object sections) or the item (arrays); None for delete/noop

    def public(self) -> dict[str, Any]:
        return {"op": self.op, "section": self.section, "key": self.key, "changes": self.changes}


@dataclass
class PlanResult:
    operations: list[PlannedOp] = field(default_factory=list)
    doc_extra: dict[str, Any] = field(default_factory=dict)
    spec_extra: dict[str, Any] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        summary = {"create": 0, "update": 0, "delete": 0, "noop": 0}
        for o in self.operations:
            summary[o.op] += 1
        return {"summary": summary, "operations": [o.public() for o in self.operations]}

    @property
    def changes_anything(self) -> bool:
        return any(o.op != "noop" for o in self.operations)


def present_sections(doc: dict[str, Any]) -> list[str]:
    """The managed (present, non-null) sections of a document, in execution order."""
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        return []
    return [s for s in APPLY_ORDER if spec.get(s) is not None]


def _is_secret(section: str, path: str) -> bool:
    if section == "security":
        return path == "webhookSecret"
    if section == "mcpServers":
        return path.startswith("headers.")
    return False


def _diff(section: str, before: Any, after: Any, prefix: str, out: list[dict[str, Any]]) -> None:
    """Leaf changes between two values; dicts are walked (so secrets are redacted one by one)."""
    if before == after:
        return
    walkable = (before is None or isinstance(before, dict)) and (after is None or isinstance(after, dict))
    if walkable:
        b, a = before or {}, after or {}
        n = len(out)
        for k in list(b) + [k for k in a if k not in b]:
            _diff(section, b.get(k), a.get(k), f"{prefix}.{k}" if prefix else str(k), out)
        if len(out) > n:
            return
    path = prefix
    if _is_secret(section, path):
        before = REDACTED if before is not None else None
        after = REDACTED if after is not None else None
    elif section == "mcpServers" and path == "headers":
        before, after = redact_headers(before), redact_headers(after)
    out.append({"path": path, "before": before, "after": after})


def redact_headers(headers: Any) -> Any:
    if isinstance(headers, dict):
        return {k: REDACTED for k in headers}
    return headers


def _resolve_redacted(
    section: str, path: str, value: Any, current: Any, errors: list[dict[str, str]]
) -> Any:
    """``"<redacted>"`` sent for a secret means "keep the current value"."""
    if value != REDACTED:
        return value
    if current is None:
        errors.append({"path": path, "message": f"{REDACTED!r} given but there is no current value to keep"})
        return value
    return current


def plan_apply(
    live: dict[str, Any], doc: dict[str, Any], *, prune: bool = True, values: EnumValues = CONTRACT_VALUES
) -> PlanResult:
    """Validate ``doc`` and plan it against the ``live`` config; raises ApplyValidationError."""
    errors = validate_document(doc, values)
    if errors:
        raise ApplyValidationError(errors)
    spec: dict[str, Any] = doc["spec"]
    result = PlanResult(
        doc_extra={k: v for k, v in doc.items() if k not in ("apiVersion", "kind", "metadata", "spec")},
        spec_extra={k: v for k, v in spec.items() if k not in APPLY_ORDER},
    )
    secret_errors: list[dict[str, str]] = []
    for section in APPLY_ORDER:
        desired = spec.get(section)
        if desired is None:
            continue  # unmanaged
        if section in OBJECT_SECTIONS:
            desired = with_integers(section, desired)
            result.operations.append(_plan_object(section, live.get(section) or {}, desired, secret_errors))
        else:
            result.operations.extend(_plan_array(section, live.get(section) or [], desired, prune, secret_errors))
    if secret_errors:
        raise ApplyValidationError(secret_errors)
    return result


def _plan_object(
    section: str, current: dict[str, Any], desired: dict[str, Any], errors: list[dict[str, str]]
) -> PlannedOp:
    new = dict(current)
    for k, v in desired.items():
        if v is None:
            new.pop(k, None)
        elif section == "security" and k == "webhookSecret":
            new[k] = _resolve_redacted(section, f"spec.security.{k}", v, current.get(k), errors)
        else:
            new[k] = copy.deepcopy(v)
    if new == current:
        return PlannedOp("noop", section, None, None)
    changes: list[dict[str, Any]] = []
    _diff(section, current, new, "", changes)
    return PlannedOp("update", section, None, changes, new)


def fill_defaults(section: str, item: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(item)
    for k, dv in ITEM_DEFAULTS[section].items():
        if out.get(k) is None:
            out[k] = dv
    return out


def _plan_array(
    section: str, current: list[dict[str, Any]], desired: list[dict[str, Any]], prune: bool, errors: list[dict[str, str]]
) -> list[PlannedOp]:
    key_field = ITEM_KEYS[section]
    live = {item[key_field]: item for item in current}
    ops: list[PlannedOp] = []
    wanted: set[str] = set()
    for i, raw in enumerate(desired):
        key = raw[key_field]
        wanted.add(key)
        item = fill_defaults(section, raw)
        old = live.get(key)
        if section == "mcpServers" and isinstance(item.get("headers"), dict):
            old_headers = (old or {}).get("headers") or {}
            item["headers"] = {
                h: _resolve_redacted(section, f"spec.mcpServers[{i}].headers.{h}", hv, old_headers.get(h), errors)
                for h, hv in item["headers"].items()
            }
        changes: list[dict[str, Any]] = []
        if old is None:
            _diff(section, None, item, "", changes)
            ops.append(PlannedOp("create", section, key, changes, item))
        elif old == item:
            ops.append(PlannedOp("noop", section, key, None))
        else:
            _diff(section, old, item, "", changes)
            ops.append(PlannedOp("update", section, key, changes, item))
    if prune:
        for key in live:
            if key not in wanted:
                ops.append(PlannedOp("delete", section, key, None))
    return ops


# -- execution --------------------------------------------------------------


@dataclass
class ExecutionResult:
    config: dict[str, Any]  # the config after what ran (only kept operations)
    applied: list[PlannedOp]
    failed: dict[str, Any] | None


def _run_time_failure(op: PlannedOp) -> tuple[str, str] | None:
    """The run-time failures the emulator always produces (spec, Apply semantics 4)."""
    if op.op not in ("create", "update"):
        return None
    if op.section == "domains" and str(op.key).lower().rstrip(".").endswith(".unverified"):
        return "domain_verification_failed", f"domain {op.key!r} could not be verified (DNS record not found)"
    if op.section == "mcpServers":
        host = (urlsplit(op.new_value.get("url", "")).hostname or "").lower()
        if host.endswith(".unreachable"):
            return "mcp_unreachable", f"MCP server {op.key!r} is unreachable at {host}"
    return None


def execute(live: dict[str, Any], plan: PlanResult) -> ExecutionResult:
    """Run the plan's operations in order; stop at the first failure, keeping what ran before."""
    config = copy.deepcopy(live)
    applied: list[PlannedOp] = []
    for op in plan.operations:
        if op.op == "noop":
            continue
        failure = _run_time_failure(op)
        if failure is not None:
            code, message = failure
            return ExecutionResult(
                config, applied, {"op": op.op, "section": op.section, "key": op.key, "code": code, "message": message}
            )
        if op.section in OBJECT_SECTIONS:
            config[op.section] = op.new_value
        else:
            key_field = ITEM_KEYS[op.section]
            items = list(config.get(op.section) or [])
            idx = next((i for i, it in enumerate(items) if it[key_field] == op.key), None)
            if op.op == "delete":
                if idx is not None:
                    items.pop(idx)
            elif idx is None:
                items.append(op.new_value)
            else:
                items[idx] = op.new_value
            config[op.section] = items
        applied.append(op)
    return ExecutionResult(config, applied, None)


# -- export -----------------------------------------------------------------


def redact_config(config: dict[str, Any]) -> dict[str, Any]:
    """The spec as get_config shows it: every section present, secrets as ``"<redacted>"``."""
    spec: dict[str, Any] = {}
    for section in SECTIONS:
        value = copy.deepcopy(config.get(section))
        if section in OBJECT_SECTIONS:
            value = value or {}
            if section == "security" and value.get("webhookSecret") is not None:
                value["webhookSecret"] = REDACTED
        else:
            value = value or []
            if section == "mcpServers":
                for item in value:
                    if isinstance(item.get("headers"), dict):
                        item["headers"] = redact_headers(item["headers"])
        spec[section] = value
    return spec


def normalize_config(config: dict[str, Any]) -> dict[str, Any]:
    """A seeded config as stored: array items with their defaults filled in, null keys dropped."""
    out: dict[str, Any] = {}
    for section in APPLY_ORDER:
        value = config.get(section)
        if value is None:
            continue
        if section in OBJECT_SECTIONS:
            out[section] = {k: copy.deepcopy(v) for k, v in with_integers(section, value).items() if v is not None}
        else:
            out[section] = [fill_defaults(section, item) for item in value]
    return out
