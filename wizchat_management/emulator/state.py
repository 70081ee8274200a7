"""The emulator's state model, without HTTP: organizations, API keys, chatbots and their configs.

In memory by default. With a ``path`` every change is written through to a
SQLite file (one committed transaction per change, WAL), so an emulator killed
with -9 and restarted on the same file keeps everything.

Chatbot configs are stored raw (secrets in clear, array items with their
defaults filled in); redaction happens when they leave through the API.
"""

from __future__ import annotations

import copy
import json
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from . import engine

ALL_SCOPES: tuple[str, ...] = (
    "chatbots:read",
    "chatbots:write",
    "mcp:read",
    "mcp:write",
    "skills:read",
    "skills:write",
    "security:read",
    "security:write",
    "domains:read",
    "domains:write",
    "deploy",
    "analytics:read",
    "documents:read",
    "documents:write",
    "videos:read",
    "videos:write",
)


def now_rfc3339() -> str:
    """RFC 3339, UTC, second precision: ``2026-11-25T21:00:00Z``."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Organization:
    id: str
    name: str
    tenant: str = ""
    environment: str = ""


@dataclass
class ApiKey:
    key: str
    org_id: str
    label: str
    scopes: frozenset[str] = frozenset(ALL_SCOPES)
    rate: float | None = None  # per-key override of the global limit (None = use global)
    burst: int | None = None
    env_name: str | None = None  # variable name in a --keys-out dotenv file

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["scopes"] = sorted(self.scopes)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ApiKey:
        return cls(**{**d, "scopes": frozenset(d["scopes"])})

    def __repr__(self) -> str:  # never the key itself
        return f"ApiKey(label={self.label!r}, org_id={self.org_id!r})"


@dataclass
class Chatbot:
    id: str
    org_id: str
    name: str
    description: str | None = None
    status: str = "active"
    revision: int = 0
    created_at: str = field(default_factory=now_rfc3339)
    updated_at: str = field(default_factory=now_rfc3339)
    # Section name -> raw value (core/security/telemetry dicts, the others lists).
    config: dict[str, Any] = field(default_factory=dict)
    # Unknown fields of an applied document, kept for lossless round trips.
    doc_extra: dict[str, Any] = field(default_factory=dict)
    spec_extra: dict[str, Any] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        """The ``PublicChatbot`` JSON."""
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "status": self.status,
            "revision": self.revision,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
        }

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Chatbot:
        return cls(**d)


@dataclass
class ApplyOutcome:
    """One apply or dry run: its plan, what ran (None for a dry run) and the chatbot's revision after."""

    plan: engine.PlanResult
    result: engine.ExecutionResult | None
    revision: int

    def public(self) -> dict[str, Any]:
        """The ``ApplyResult`` JSON."""
        if self.result is None:
            return {"dryRun": True, "applied": [], "failed": None, "plan": self.plan.public(), "revision": self.revision}
        return {
            "dryRun": False,
            "applied": [op.public() for op in self.result.applied],
            "failed": self.result.failed,
            "plan": self.plan.public(),
            "revision": self.revision,
        }


def _merge_extra(stored: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    out = dict(stored)
    for k, v in given.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = v
    return out


def _take_result(cb: Chatbot, plan: engine.PlanResult, result: engine.ExecutionResult) -> bool:
    """Carry an executed plan into the chatbot in place; True when anything stored changed."""
    doc_extra = _merge_extra(cb.doc_extra, plan.doc_extra)
    spec_extra = _merge_extra(cb.spec_extra, plan.spec_extra)
    changed_extra = doc_extra != cb.doc_extra or spec_extra != cb.spec_extra
    cb.doc_extra, cb.spec_extra = doc_extra, spec_extra
    if result.applied:
        cb.config = result.config
        cb.revision += 1
        cb.updated_at = now_rfc3339()
        core = cb.config.get("core") or {}
        if isinstance(core.get("name"), str):
            cb.name = core["name"]
        if any(op.section == "core" for op in result.applied):
            cb.description = core.get("description")
    return bool(result.applied) or changed_extra


class EmulatorState:
    """All organizations, keys and chatbots. Thread-safe; optionally persisted to SQLite."""

    def __init__(self, path: str | None = None) -> None:
        self._lock = threading.RLock()
        self.orgs: dict[str, Organization] = {}
        self.keys: dict[str, ApiKey] = {}
        self.chatbots: dict[str, Chatbot] = {}
        self._by_org: dict[str, list[str]] = {}  # creation order, for stable pagination
        # Open enum values accepted on apply: the contract's, plus a seed's ``newerValues``.
        self.values: engine.EnumValues = engine.CONTRACT_VALUES
        self.path = path
        self._db: sqlite3.Connection | None = None
        if path:
            self._open(path)

    # -- persistence --------------------------------------------------------

    def _open(self, path: str) -> None:
        # One connection shared under our lock (the server thread writes, tests read).
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")  # committed rows survive kill -9 (https://www.sqlite.org/pragma.html#pragma_synchronous)
        for table in ("orgs", "keys", "chatbots"):
            db.execute(f"CREATE TABLE IF NOT EXISTS {table} (id TEXT PRIMARY KEY, seq INTEGER, body TEXT NOT NULL)")
        self._db = db
        for (body,) in db.execute("SELECT body FROM orgs ORDER BY seq"):
            org = Organization(**json.loads(body))
            self.orgs[org.id] = org
            self._by_org.setdefault(org.id, [])
        for (body,) in db.execute("SELECT body FROM keys ORDER BY seq"):
            k = ApiKey.from_json(json.loads(body))
            self.keys[k.key] = k
        for (body,) in db.execute("SELECT body FROM chatbots ORDER BY seq"):
            cb = Chatbot.from_json(json.loads(body))
            self.chatbots[cb.id] = cb
            self._by_org.setdefault(cb.org_id, []).append(cb.id)

    def _write(self, table: str, id_: str, body: dict[str, Any]) -> None:
        if self._db is None:
            return
        self._db.execute(
            f"INSERT INTO {table} (id, seq, body) VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM {table}), ?)"
            f" ON CONFLICT(id) DO UPDATE SET body = excluded.body",
            (id_, json.dumps(body, separators=(",", ":"))),
        )

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    # -- mutations ----------------------------------------------------------

    def reset(self) -> None:
        """Forget everything (and empty the SQLite file)."""
        with self._lock:
            self.orgs.clear()
            self.keys.clear()
            self.chatbots.clear()
            self._by_org.clear()
            if self._db is not None:
                self._db.execute("BEGIN IMMEDIATE")
                for table in ("orgs", "keys", "chatbots"):
                    self._db.execute(f"DELETE FROM {table}")
                self._db.execute("COMMIT")

    def add_org(self, org: Organization) -> Organization:
        with self._lock:
            self.orgs[org.id] = org
            self._by_org.setdefault(org.id, [])
            self._write("orgs", org.id, asdict(org))
            return org

    def add_key(self, key: ApiKey) -> ApiKey:
        with self._lock:
            if key.org_id not in self.orgs:
                raise KeyError(f"unknown organization {key.org_id!r}")
            self.keys[key.key] = key
            self._write("keys", key.key, key.to_json())
            return key

    def add_chatbot(self, chatbot: Chatbot) -> Chatbot:
        with self._lock:
            if chatbot.org_id not in self.orgs:
                raise KeyError(f"unknown organization {chatbot.org_id!r}")
            if chatbot.id not in self.chatbots:
                self._by_org.setdefault(chatbot.org_id, []).append(chatbot.id)
            self.chatbots[chatbot.id] = chatbot
            self._write("chatbots", chatbot.id, chatbot.to_json())
            return chatbot

    def save_chatbot(self, chatbot: Chatbot) -> None:
        """Write through a chatbot changed in place (after an apply)."""
        with self._lock:
            self._write("chatbots", chatbot.id, chatbot.to_json())

    def bulk(self, orgs: Iterable[Organization], keys: Iterable[ApiKey], chatbots: Iterable[Chatbot]) -> None:
        """Add many objects in one transaction (seeding)."""
        with self._lock:
            if self._db is not None:
                self._db.execute("BEGIN IMMEDIATE")
            try:
                for o in orgs:
                    self.add_org(o)
                for k in keys:
                    self.add_key(k)
                for c in chatbots:
                    self.add_chatbot(c)
            except BaseException:
                if self._db is not None:
                    self._db.execute("ROLLBACK")
                raise
            if self._db is not None:
                self._db.execute("COMMIT")

    def apply_config(self, chatbot: Chatbot, doc: Any, *, dry_run: bool, prune: bool) -> ApplyOutcome:
        """Plan ``doc`` against the chatbot and, unless a dry run, execute it and save the result.

        One locked step, so plan and execution see one consistent chatbot.
        Raises engine.ApplyValidationError when the document breaks the contract.
        """
        with self._lock:
            plan = engine.plan_apply(chatbot.config, doc, prune=prune, values=self.values)
            if dry_run:
                return ApplyOutcome(plan, None, chatbot.revision)
            result = engine.execute(chatbot.config, plan)
            if _take_result(chatbot, plan, result):
                self.save_chatbot(chatbot)
            return ApplyOutcome(plan, result, chatbot.revision)

    # -- queries ------------------------------------------------------------

    def key_for(self, token: str) -> ApiKey | None:
        return self.keys.get(token)

    def key_by_label(self, label: str) -> ApiKey | None:
        for k in self.keys.values():
            if k.label == label:
                return k
        return None

    def chatbot_for(self, org_id: str, chatbot_id: str) -> Chatbot | None:
        """The chatbot if it belongs to ``org_id``; another tenant's is as unknown as a missing one."""
        cb = self.chatbots.get(chatbot_id)
        if cb is None or cb.org_id != org_id:
            return None
        return cb

    def list_chatbots(self, org_id: str) -> list[Chatbot]:
        return [self.chatbots[i] for i in self._by_org.get(org_id, [])]

    def chatbot_by_name(self, org_id: str, name: str) -> Chatbot | None:
        for cb in self.list_chatbots(org_id):
            if cb.name == name:
                return cb
        return None

    def snapshot(self) -> dict[str, Any]:
        """A deep copy of the chatbots' raw state (for white-box assertions)."""
        with self._lock:
            return {i: copy.deepcopy(cb.to_json()) for i, cb in self.chatbots.items()}
