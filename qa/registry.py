"""The versioned form registry: load ``qa-forms/`` → check → swap atomically.

Same approach as the dialplan registry (:mod:`ivr.registry`, whose
:func:`~ivr.registry.content_hash` it uses): a reload that fails the checker is
rejected with its ``file:line:col`` errors and the previous forms keep serving;
every loaded form version is stored by content hash, so an evaluation made on
an older version is re-read (and re-scored) on exactly that version. Reloads:
file watch, SIGHUP (:meth:`request_reload`) and ``POST /api/qa/forms/reload``; the
watcher and SIGHUP reloads are tasks owned by the registry, cancelled by :meth:`stop`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

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
        self._watch_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stop_event: asyncio.Event | None = None
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
        if self.watch_enabled and self._watch_task is None and self.directory.is_dir():
            self._stop_event = asyncio.Event()
            self._watch_task = asyncio.create_task(self._watch(), name="qa-forms-watch")
        return result

    async def _watch(self) -> None:
        from watchfiles import awatch

        assert self._stop_event is not None
        try:
            async for changes in awatch(self.directory, stop_event=self._stop_event, debounce=self.watch_debounce_ms, step=50):
                await self.reload("file change: " + ", ".join(sorted({Path(p).name for _, p in changes})))
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the watcher must not die silently
            log.exception("QA forms watcher stopped; use POST /api/qa/forms/reload")

    def request_reload(self, reason: str) -> asyncio.Task[QaReloadResult]:
        """Schedule a reload as an owned task (the composition root's SIGHUP handler)."""
        task = asyncio.get_running_loop().create_task(self.reload(reason), name=f"qa-forms-reload:{reason}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def stop(self) -> None:
        if self._stop_event is not None:
            self._stop_event.set()
        tasks = list(self._tasks) + ([self._watch_task] if self._watch_task else [])
        for t in tasks:
            t.cancel()
        for t in tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - shutting down
                pass
        self._tasks.clear()
        self._watch_task = None
