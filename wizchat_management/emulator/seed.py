"""Seed documents: organizations with their keys, scopes, per-key limits and chatbots with configs.

The format (YAML or JSON, documented in README "The emulator")::

    keySeed: my-fixed-seed          # optional: generated keys derive from it (deterministic)
    limits:                         # optional; the command line's options win over these
      rate: 2                       # every key's limit (requests/s) ...
      burst: 2                      # ... and burst (--rate, --burst)
      limiter: fixed-window         # token-bucket | fixed-window | sliding-window (--limiter)
      rateHeaders: false            # no X-RateLimit-* nor retryAfterMs (--no-rate-headers)
      retryAfter: http-date         # seconds | http-date | none (--retry-after)
      orgRate: 4                    # one limit shared by all keys of each organization (--org-rate)
      orgBurst: 4                   # (--org-burst)
    organizations:
      - name: acme-staging          # required, unique
        id: org_acme_staging        # optional (default org_<name>)
        tenant: acme                # optional
        environment: staging        # "production" gives wpk_live_ keys, anything else wpk_test_
        rate: 3                     # optional: this organization's shared limit ...
        burst: 3                    # ... (overrides limits.orgRate/orgBurst)
        keys:
          - label: acme/staging     # optional (default <name>/<index>); used by stats and limits
            key: wpk_test_...       # optional: generated when absent
            envName: WIZCHAT_ACME_STAGING_KEY   # optional: variable name in --keys-out
            scopes: [chatbots:read, chatbots:write]   # optional: default all scopes
            rate: 5                 # optional per-key limit (requests/s) ...
            burst: 10               # ... and bucket capacity
        chatbots:
          - name: support-billing   # required, unique in the organization
            id: cb_...              # optional (derived from org and name)
            description: ...        # optional
            status: active          # or paused, or a newerValues status
            config: {core: {...}, security: {...}, telemetry: {...}, mcpServers: [...], skills: [...], domains: [...]}
    newerValues:                    # optional: enum values newer than the contract (openapi.json NewerValue)
      transport: [websocket]        # accepted as an MCP server's transport, in the seed and on apply
      status: [archived]            # accepted as a chatbot's status in the seed

Configs are validated by the apply engine's own rules. A section, key or item
field the contract does not name is kept and served as it is, so a seed can
play a server newer than the client (tests/test_newer_contract.py); so can an
enum value ``newerValues`` names (tests/test_newer_enum_values.py).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from ..vocabulary import APPLY_ORDER, REDACTED, is_api_key
from . import engine
from .ratelimit import LIMITER_KINDS, RETRY_AFTER_FORMS
from .state import ALL_SCOPES, ApiKey, Chatbot, EmulatorState, Organization

DEFAULT_KEY_SEED = "wizchat-emulator"
_ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class SeedError(ValueError):
    """The seed document is invalid; the message names every problem with its path."""


def derive_key(key_seed: str, label: str, live: bool) -> str:
    """A deterministic, realistic-looking key: wpk_live_/wpk_test_ + 32 url-safe characters."""
    digest = hmac.new(key_seed.encode(), label.encode(), hashlib.sha256).digest()
    body = base64.urlsafe_b64encode(digest).decode().rstrip("=")[:32]
    return ("wpk_live_" if live else "wpk_test_") + body


def derive_chatbot_id(org_id: str, name: str) -> str:
    return "cb_" + hashlib.sha256(f"{org_id}/{name}".encode()).hexdigest()[:20]


@dataclass
class Seeded:
    orgs: list[Organization] = field(default_factory=list)
    keys: list[ApiKey] = field(default_factory=list)
    chatbots: list[Chatbot] = field(default_factory=list)
    # The seed's ``limits`` block (keys as in the document) and organizations' own limits.
    limits: dict[str, Any] = field(default_factory=dict)
    org_limits: dict[str, tuple[float, int | None]] = field(default_factory=dict)
    values: engine.EnumValues = engine.CONTRACT_VALUES  # the contract's enums plus ``newerValues``

    def key_map(self) -> dict[str, str]:
        """label -> key."""
        return {k.label: k.key for k in self.keys}


def load_seed_file(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except OSError as exc:
        raise SeedError(f"cannot read seed file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise SeedError(f"seed file {path} is not valid YAML: {exc}") from None
    return data  # type: ignore[no-any-return]


def build_seed(doc: Any, *, created_at: str | None = None) -> Seeded:
    """Validate a seed document and build its objects (not yet added to a state)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("organizations"), list):
        raise SeedError("seed: must be a mapping with an 'organizations' list")
    errors: list[str] = []
    out = Seeded()
    key_seed = doc.get("keySeed", DEFAULT_KEY_SEED)
    if not isinstance(key_seed, str):
        errors.append("keySeed: must be a string")
        key_seed = DEFAULT_KEY_SEED
    out.limits = _limits_block(doc.get("limits"), errors)
    out.values = _newer_values(doc.get("newerValues"), errors)
    names: set[str] = set()
    labels: set[str] = set()
    for i, o in enumerate(doc["organizations"]):
        _build_org(o, f"organizations[{i}]", key_seed, names, labels, created_at, out, errors)
    if errors:
        raise SeedError("invalid seed:\n  " + "\n  ".join(errors))
    return out


def _newer_values(block: Any, errors: list[str]) -> engine.EnumValues:
    """A seed's ``newerValues``: {transport: [...], status: [...]}, each a list of strings."""
    if block is None:
        return engine.CONTRACT_VALUES
    if not isinstance(block, dict):
        errors.append("newerValues: must be a mapping")
        return engine.CONTRACT_VALUES
    lists: dict[str, tuple[str, ...]] = {}
    for name in ("transport", "status"):
        values = block.get(name, [])
        if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
            errors.append(f"newerValues.{name}: must be a list of non-empty strings")
            values = []
        lists[name] = tuple(values)
    errors.extend(f"newerValues.{k}: unknown (transport, status)" for k in block if k not in lists)
    return engine.CONTRACT_VALUES.plus(lists["transport"], lists["status"])


def _build_org(
    o: Any, p: str, key_seed: str, names: set[str], labels: set[str],
    created_at: str | None, out: Seeded, errors: list[str],
) -> None:
    """One organization with its keys and chatbots, added to ``out``; problems go to ``errors``."""
    if not isinstance(o, dict):
        errors.append(f"{p}: must be a mapping")
        return
    name = o.get("name")
    if not isinstance(name, str) or not name:
        errors.append(f"{p}.name: required, a non-empty string")
        return
    if name in names:
        errors.append(f"{p}.name: duplicate organization {name!r}")
    names.add(name)
    env = str(o.get("environment", "staging"))
    org = Organization(
        id=str(o.get("id") or f"org_{re.sub(r'[^A-Za-z0-9]+', '_', name)}"),
        name=name,
        tenant=str(o.get("tenant", name)),
        environment=env,
    )
    out.orgs.append(org)
    org_rate, org_burst = o.get("rate"), o.get("burst")
    _check_rate(org_rate, org_burst, p, errors)
    if org_rate is not None:
        out.org_limits[org.id] = (org_rate, org_burst)
    live = env == "production"
    for j, k in enumerate(o.get("keys") or []):
        key = _build_key(k, f"{p}.keys[{j}]", f"{name}/{j}", org.id, key_seed, live, labels, errors)
        if key is not None:
            out.keys.append(key)
    bot_names: set[str] = set()
    for j, c in enumerate(o.get("chatbots") or []):
        bot = _build_chatbot(c, f"{p}.chatbots[{j}]", org, bot_names, created_at, errors, out.values)
        if bot is not None:
            out.chatbots.append(bot)


def _build_key(
    k: Any, kp: str, default_label: str, org_id: str, key_seed: str, live: bool,
    labels: set[str], errors: list[str],
) -> ApiKey | None:
    """One API key of an organization (None when the entry is not even a mapping)."""
    if not isinstance(k, dict):
        errors.append(f"{kp}: must be a mapping")
        return None
    label = str(k.get("label") or default_label)
    if label in labels:
        errors.append(f"{kp}.label: duplicate key label {label!r}")
    labels.add(label)
    key = k.get("key") or derive_key(key_seed, label, live)
    if not isinstance(key, str) or not is_api_key(key):
        errors.append(f"{kp}.key: must look like wpk_live_/wpk_test_ + 24 or more url-safe characters")
    scopes = k.get("scopes", list(ALL_SCOPES))
    if not isinstance(scopes, list) or any(s not in ALL_SCOPES for s in scopes):
        errors.append(f"{kp}.scopes: must be a list of known scopes ({', '.join(ALL_SCOPES)})")
        scopes = []
    rate, burst = k.get("rate"), k.get("burst")
    _check_rate(rate, burst, kp, errors)
    env_name = k.get("envName")
    if env_name is not None and (not isinstance(env_name, str) or not _ENV_RE.match(env_name)):
        errors.append(f"{kp}.envName: must be a valid environment variable name")
    return ApiKey(key=str(key), org_id=org_id, label=label, scopes=frozenset(scopes),
                  rate=rate, burst=burst, env_name=env_name)


def _build_chatbot(
    c: Any, cp: str, org: Organization, bot_names: set[str], created_at: str | None, errors: list[str],
    values: engine.EnumValues = engine.CONTRACT_VALUES,
) -> Chatbot | None:
    """One chatbot of an organization (None when its entry cannot be built at all)."""
    if not isinstance(c, dict):
        errors.append(f"{cp}: must be a mapping")
        return None
    cname = c.get("name")
    if not isinstance(cname, str) or not cname:
        errors.append(f"{cp}.name: required, a non-empty string")
        return None
    if cname in bot_names:
        errors.append(f"{cp}.name: duplicate chatbot {cname!r} in {org.name}")
    bot_names.add(cname)
    status = c.get("status", "active")
    if status not in values.statuses:
        errors.append(f"{cp}.status: must be {engine.one_of(values.statuses)}")
    config = c.get("config") or {}
    if not isinstance(config, dict):
        errors.append(f"{cp}.config: must be a mapping of sections")
        return None
    config = dict(config)
    core = dict(config.get("core") or {})
    core.setdefault("name", cname)
    config["core"] = core
    problems = _config_problems(config, cp, errors, values)
    bot = Chatbot(
        id=str(c.get("id") or derive_chatbot_id(org.id, cname)),
        org_id=org.id,
        name=core["name"] if isinstance(core.get("name"), str) else cname,
        description=c.get("description", core.get("description")),
        status=str(status),
        config=engine.normalize_config(config) if not problems else {},
        spec_extra={k: v for k, v in config.items() if k not in APPLY_ORDER},
    )
    _stamp_times(bot, c, created_at)
    return bot


def _config_problems(config: dict[str, Any], cp: str, errors: list[str], values: engine.EnumValues) -> bool:
    """Check a seeded config by the apply engine's rules; True when it has contract problems."""
    problems = engine.validate_document({"apiVersion": engine.API_VERSION, "kind": engine.KIND, "spec": config}, values)
    errors.extend(f"{cp}.config.{e['path'][len('spec.'):]}: {e['message']}" for e in problems)
    if REDACTED in repr(config):
        errors.append(f"{cp}.config: a seed holds real values, not {REDACTED!r}")
    return bool(problems)


def _stamp_times(bot: Chatbot, c: dict[str, Any], created_at: str | None) -> None:
    """The seed's own createdAt/updatedAt win over the load time."""
    if created_at:
        bot.created_at = bot.updated_at = created_at
    if isinstance(c.get("createdAt"), str):
        bot.created_at = c["createdAt"]
    if isinstance(c.get("updatedAt"), str):
        bot.updated_at = c["updatedAt"]


def _check_rate(rate: Any, burst: Any, path: str, errors: list[str], names: tuple[str, str] = ("rate", "burst")) -> None:
    r, b = names
    if rate is not None and (not isinstance(rate, (int, float)) or isinstance(rate, bool) or not 0 < rate < float("inf")):
        errors.append(f"{path}.{r}: must be a positive number (requests per second)")
    if burst is not None and (not isinstance(burst, int) or isinstance(burst, bool) or burst < 1):
        errors.append(f"{path}.{b}: must be an integer >= 1")
    if burst is not None and rate is None:
        errors.append(f"{path}.{b}: needs {r}")


_LIMIT_FIELDS = ("rate", "burst", "limiter", "rateHeaders", "retryAfter", "orgRate", "orgBurst")


def _limits_block(block: Any, errors: list[str]) -> dict[str, Any]:
    """The seed's top-level ``limits``: the same settings as the emulator's command line."""
    if block is None:
        return {}
    if not isinstance(block, dict):
        errors.append("limits: must be a mapping")
        return {}
    for name in sorted(set(block) - set(_LIMIT_FIELDS)):
        errors.append(f"limits.{name}: unknown setting (known: {', '.join(_LIMIT_FIELDS)})")
    _check_rate(block.get("rate"), block.get("burst"), "limits", errors)
    _check_rate(block.get("orgRate"), block.get("orgBurst"), "limits", errors, ("orgRate", "orgBurst"))
    if "limiter" in block and block["limiter"] not in LIMITER_KINDS:
        errors.append(f"limits.limiter: must be one of {', '.join(LIMITER_KINDS)}")
    if "retryAfter" in block and block["retryAfter"] not in RETRY_AFTER_FORMS:
        errors.append(f"limits.retryAfter: must be one of {', '.join(RETRY_AFTER_FORMS)}")
    if "rateHeaders" in block and not isinstance(block["rateHeaders"], bool):
        errors.append("limits.rateHeaders: must be true or false")
    return {k: v for k, v in block.items() if k in _LIMIT_FIELDS}


def apply_seed(state: EmulatorState, seeded: Seeded) -> None:
    """Add the seeded objects to ``state`` in one transaction."""
    clash = [k.label for k in seeded.keys if k.key in state.keys]
    if clash:
        raise SeedError(f"keys already exist for: {', '.join(clash)}")
    state.bulk(seeded.orgs, seeded.keys, seeded.chatbots)
    state.values = state.values.plus(seeded.values.transports, seeded.values.statuses)


def dotenv(keys: list[ApiKey]) -> str:
    """A dotenv file of the keys that have an env name (WIZCHAT_<TENANT>_<ENV>_KEY=...)."""
    lines = ["# WizChat emulator API keys (local emulator only; generated)."]
    for k in keys:
        if k.env_name:
            lines.append(f"{k.env_name}={k.key}")
    return "\n".join(lines) + "\n"


def write_keys_file(path: str, keys: list[ApiKey]) -> None:
    import os

    # Owner-only: these are credentials, even if only for the emulator.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(dotenv(keys))
