"""The versioned form registry: load ``qa-forms/`` → check → swap atomically.

Same approach as the dialplan registry (:mod:`ivr.registry`, whose
:func:`~ivr.registry.content_hash` it uses): a reload that fails the checker is
rejected with its ``file:line:col`` errors and the previous forms keep serving;
every loaded form version is stored by content hash, so an evaluation made on
an older version is re-read (and re-scored) on exactly that version. Reloads:
file watch, SIGHUP (:meth:`request_reload`) and ``POST /api/qa/forms/reload``; the
watcher and SIGHUP reloads are tasks owned by the registry (the same
:class:`callcore.reloader.DirectoryReloader` as the dialplans), cancelled by :meth:`stop`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from callcore.reloader import DirectoryReloader
from ivr.registry import content_hash
from qa.checker import check_dir
from qa.forms import Form, parse_form
from qa.sampling import RuleSet

log = logging.getLogger(__name__)


class FormVersionStore(Protocol):
    async def save_form_version(self, form_id: str, hash: str, source: str, file: str) -> None: ...
    async def form_version_source(self, form_id: str, hash: str) -> tuple[str, str] | None: ...


@dataclass(frozen=True)
class QaSet:
    forms: dict[str, Form]
    versions: dict[str, str]  # form id -> content hash
    rules: RuleSet | None


@dataclass
class QaReloadResult:
    ok: bool
    reason: str
    errors: list[str] = field(default_factory=list)
    changed: dict[str, str] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "reason": self.reason, "errors": self.errors, "changed": self.changed, "versions": self.versions}


class FormRegistry:
    def __init__(self, directory: Path, store: FormVersionStore | None = None, *, watch: bool = False, watch_debounce_ms: int = 300) -> None:
        self.directory = Path(directory)
        self.store = store
        self.watch_enabled = watch
        self.watch_debounce_ms = watch_debounce_ms
        self._current: QaSet | None = None
        self._known: dict[tuple[str, str], Form] = {}
        self._lock = asyncio.Lock()
        self._reloader = DirectoryReloader(
            self.directory, self.reload, name="qa-forms", debounce_ms=watch_debounce_ms,
            fallback="use SIGHUP or POST /api/qa/forms/reload",
        )
        self.reloads = 0

    @property
    def current(self) -> QaSet:
        if self._current is None:
            raise RuntimeError("QA forms not loaded (FormRegistry.reload())")
        return self._current

    @property
    def loaded(self) -> bool:
        return self._current is not None

    def form(self, form_id: str) -> tuple[Form, str] | None:
        """The active version of a form and its hash."""
        cur = self._current
        if cur is None or form_id not in cur.forms:
            return None
        return cur.forms[form_id], cur.versions[form_id]

    async def version(self, form_id: str, hash: str) -> Form | None:
        """A form exactly as it was at ``hash`` (from memory, else re-parsed from the stored source)."""
        f = self._known.get((form_id, hash))
        if f is not None or self.store is None:
            return f
        stored = await self.store.form_version_source(form_id, hash)
        if stored is None:
            return None
        source, file = stored
        form, _ = parse_form(source, file)
        if form is not None:
            self._known[(form_id, hash)] = form
        return form

    async def reload(self, reason: str = "manual") -> QaReloadResult:
        async with self._lock:
            result = await asyncio.to_thread(check_dir, self.directory)
            old = dict(self._current.versions) if self._current else {}
            if not result.ok:
                errors = [str(p) for p in result.errors]
                log.error("QA forms reload (%s) rejected: %s", reason, "; ".join(errors))
                return QaReloadResult(False, reason, errors, versions=old)
            versions = {fid: content_hash(text, {}) for fid, (_, text) in result.sources.items()}
            changed = {fid: h for fid, h in versions.items() if old.get(fid) != h}
            for fid, h in changed.items():
                self._known[(fid, h)] = result.forms[fid]
                if self.store is not None:
                    display, text = result.sources[fid]
                    await self.store.save_form_version(fid, h, text, display)
            self._current = QaSet(dict(result.forms), versions, result.rules)
            self.reloads += 1
            log.info("QA forms loaded (%s): %s", reason, ", ".join(f"{f}@{h[:12]}" for f, h in sorted(versions.items())))
            return QaReloadResult(True, reason, [], changed, versions)

    async def start(self) -> QaReloadResult:
        result = await self.reload("startup")
        if self.watch_enabled and self.directory.is_dir():
            self._reloader.start_watch()
        return result

    def request_reload(self, reason: str) -> asyncio.Task[QaReloadResult]:
        """Schedule a reload as an owned task (the composition root's SIGHUP handler)."""
        return self._reloader.request(reason)

    async def stop(self) -> None:
        await self._reloader.stop()
