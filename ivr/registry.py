"""The versioned flow registry: load a directory → check → swap atomically.

* :attr:`FlowRegistry.current` is an immutable :class:`FlowSet`. A call takes
  the current set when it starts and runs on it to the end, so a reload or a
  rollback never changes a call in progress.
* A reload (file watch, SIGHUP, ``POST /api/dialplans/reload``) that fails the
  checker is rejected with its errors; the previous set keeps serving.
* Every loaded version is stored (content hash over the flow text and the
  holiday files it includes) through a :class:`~ivr.repository.VersionStore`.
* :meth:`FlowRegistry.rollback` re-activates an earlier version of one flow
  (after re-checking it with the other active flows). A rollback stays in
  effect until that flow's file changes on disk: reloads triggered by other
  files keep the rolled-back version.
* The file watcher and SIGHUP reloads run as tasks owned by the registry and
  are cancelled by :meth:`stop`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import signal
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Mapping

from callcore.db import utcnow
from callcore.reloader import DirectoryReloader
from ivr.checker import check_flows, display_name, flow_files, include_reader, sort_problems
from ivr.flow import Flow, parse_flow
from ivr.loader import Pos, Problem
from ivr.repository import FlowVersion, MemoryIvrRepository, VersionStore

log = logging.getLogger(__name__)


def content_hash(text: str, includes: Mapping[str, str]) -> str:
    h = hashlib.sha256(text.encode("utf-8"))
    h.update(b"\0")
    h.update(json.dumps(dict(includes), sort_keys=True, ensure_ascii=False).encode("utf-8"))
    return h.hexdigest()


@dataclass(frozen=True)
class FlowSet:
    """One consistent, checked set of flows (what a call runs on)."""

    flows: Mapping[str, Flow]
    versions: Mapping[str, str]  # flow name -> content hash
    loaded_at: datetime
    sources: Mapping[str, FlowVersion] = field(default_factory=dict)


@dataclass
class ReloadResult:
    ok: bool
    reason: str
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    changed: dict[str, str] = field(default_factory=dict)  # flow -> new hash
    removed: list[str] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)  # active versions after the operation

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "reason": self.reason, "errors": self.errors, "warnings": self.warnings,
            "changed": self.changed, "removed": self.removed, "versions": self.versions,
        }


class RegistryNotLoaded(RuntimeError):
    pass


class FlowRegistry:
    def __init__(
        self,
        directory: Path,
        sounds_dir: Path | None = None,
        *,
        store: VersionStore | None = None,
        clock: Callable[[], datetime] = utcnow,
        check_sounds: bool = True,
        watch: bool = False,
        watch_debounce_ms: int = 300,
        voicemail_conf: Path | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.voicemail_conf = voicemail_conf  # mailboxes of voicemail nodes are checked against it
        self.sounds_dir = Path(sounds_dir) if sounds_dir is not None else self.directory / "sounds"
        self.store: VersionStore = store if store is not None else MemoryIvrRepository()
        self.clock = clock
        self.check_sounds = check_sounds
        self.watch_enabled = watch
        self.watch_debounce_ms = watch_debounce_ms
        self._current: FlowSet | None = None
        self._disk_hash: dict[str, str] = {}  # flow -> hash last seen on disk
        self._history: dict[tuple[str, str], FlowVersion] = {}
        self._lock = asyncio.Lock()
        self._reloader = DirectoryReloader(
            self.directory, self.reload, name="dialplan", debounce_ms=watch_debounce_ms,
            fallback="use SIGHUP or POST /api/dialplans/reload",
        )
        self.last_result: ReloadResult | None = None
        self.reloads = 0  # successful reloads (for tests and /api/dialplans)

    # ------------------------------------------------------------ access
    @property
    def loaded(self) -> bool:
        return self._current is not None

    @property
    def current(self) -> FlowSet:
        if self._current is None:
            raise RegistryNotLoaded("dialplans not loaded yet (call FlowRegistry.reload())")
        return self._current

    async def ensure_loaded(self) -> FlowSet:
        if self._current is None:
            result = await self.reload("first use")
            if not result.ok:
                raise RegistryNotLoaded("dialplans failed the checker:\n" + "\n".join(result.errors))
        return self.current

    async def versions(self, flow: str | None = None) -> list[FlowVersion]:
        stored = {(v.flow, v.hash): v for v in await self.store.versions(flow)}
        for key, v in self._history.items():
            if flow is None or key[0] == flow:
                stored.setdefault(key, v)
        active = dict(self._current.versions) if self._current else {}
        out = []
        for v in sorted(stored.values(), key=lambda v: (v.flow, v.loaded_at)):
            out.append(FlowVersion(v.flow, v.hash, v.source, v.file, v.includes, v.loaded_at, active.get(v.flow) == v.hash))
        return out

    # ------------------------------------------------------------ reload
    def _display(self, name: str) -> str:
        return display_name(str(self.directory), name)

    def _build(self, candidates: dict[str, FlowVersion], from_disk: set[str]) -> tuple[dict[str, Flow], list[Problem], dict[str, FlowVersion]]:
        flows: dict[str, Flow] = {}
        problems: list[Problem] = []
        reader = include_reader(self.directory)
        final: dict[str, FlowVersion] = {}
        for name, v in candidates.items():
            flow, probs = parse_flow(
                v.source, v.file, name=name,
                read_include=reader if name in from_disk else None,
                includes=None if name in from_disk else v.includes,
            )
            problems.extend(probs)
            if flow is None:
                continue
            flows[name] = flow
            h = content_hash(v.source, flow.includes) if name in from_disk else v.hash
            final[name] = FlowVersion(name, h, v.source, v.file, dict(flow.includes), v.loaded_at)
        problems.extend(check_flows(flows, self.sounds_dir if self.check_sounds else None, self.voicemail_conf))
        return flows, sort_problems(problems), final

    async def reload(self, reason: str = "manual") -> ReloadResult:
        """Re-read the directory; activate the new set only if it passes the checker."""
        async with self._lock:
            return await self._reload_locked(reason)

    def _read_disk(self) -> tuple[dict[str, FlowVersion], list[Problem]]:
        out: dict[str, FlowVersion] = {}
        problems: list[Problem] = []
        if not self.directory.is_dir():
            return out, [Problem(Pos(str(self.directory), 1, 1), "dialplans directory not found")]
        now = self.clock()
        for path in flow_files(self.directory):
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                problems.append(Problem(Pos(self._display(path.name), 1, 1), f"cannot read: {exc.__class__.__name__}"))
                continue
            out[path.stem] = FlowVersion(path.stem, "", text, self._display(path.name), {}, now)
        if not out and not problems:
            problems.append(Problem(Pos(str(self.directory), 1, 1), "no flow files (*.yaml) found"))
        return out, problems

    async def _reload_locked(self, reason: str) -> ReloadResult:
        disk, read_problems = await asyncio.to_thread(self._read_disk)
        # hash what is on disk (flow text + its holiday files) to know which flows changed
        flows_disk, problems, final_disk = await asyncio.to_thread(self._build, disk, set(disk))
        problems = read_problems + problems
        candidates: dict[str, FlowVersion] = {}
        from_disk: set[str] = set()
        active = self._current.sources if self._current else {}
        for name, v in final_disk.items():
            pinned = active.get(name)
            if pinned is not None and self._disk_hash.get(name) == v.hash and pinned.hash != v.hash:
                candidates[name] = pinned  # rolled back and the file did not change since: keep the rollback
            else:
                candidates[name] = v
                from_disk.add(name)
        if any(name not in from_disk for name in candidates):
            flows, problems, final = await asyncio.to_thread(self._build, candidates, from_disk)
            problems = read_problems + problems
        else:
            flows, final = flows_disk, final_disk
        errors = [p for p in problems if p.severity == "error"]
        warnings = [str(p) for p in problems if p.severity == "warning"]
        if errors or set(final) != set(disk):
            result = ReloadResult(False, reason, [str(p) for p in errors] or ["a flow could not be parsed"], warnings,
                                  versions=dict(self._current.versions) if self._current else {})
            log.error("dialplan reload (%s) rejected, %d error(s); %s", reason, len(result.errors),
                      "previous version keeps serving" if self._current else "nothing loaded")
            for e in result.errors:
                log.error("  %s", e)
            self.last_result = result
            return result
        old_versions = dict(self._current.versions) if self._current else {}
        new_versions = {name: v.hash for name, v in final.items()}
        changed = {n: h for n, h in new_versions.items() if old_versions.get(n) != h}
        removed = sorted(set(old_versions) - set(new_versions))
        for name, v in final.items():
            self._history.setdefault((name, v.hash), v)
            if name in changed:
                await self.store.save_version(v)
                await self.store.set_active(name, v.hash)
        for name, v in final_disk.items():
            self._disk_hash[name] = v.hash
        self._current = FlowSet(flows, new_versions, self.clock(), final)
        self.reloads += 1
        result = ReloadResult(True, reason, [], warnings, changed, removed, new_versions)
        self.last_result = result
        log.info(
            "dialplans loaded (%s): %s", reason,
            ", ".join(f"{n}@{h[:12]}{' (new)' if n in changed else ''}" for n, h in sorted(new_versions.items())),
        )
        return result

    async def rollback(self, flow: str, hash: str) -> ReloadResult:
        """Activate an earlier stored version of ``flow`` (a hash prefix of 6+ characters is enough)."""
        async with self._lock:
            if self._current is None:
                return ReloadResult(False, f"rollback {flow}", ["dialplans not loaded"])
            version = await self._find_version(flow, hash)
            if version is None:
                return ReloadResult(False, f"rollback {flow}", [f"no stored version {hash!r} of flow {flow!r}"], versions=dict(self._current.versions))
            candidates = dict(self._current.sources)
            candidates[flow] = version
            flows, problems, final = await asyncio.to_thread(self._build, candidates, set())
            errors = [str(p) for p in problems if p.severity == "error"]
            if errors:
                return ReloadResult(False, f"rollback {flow}", errors, versions=dict(self._current.versions))
            new_versions = {n: v.hash for n, v in final.items()}
            await self.store.set_active(flow, version.hash)
            self._history.setdefault((flow, version.hash), version)
            self._current = FlowSet(flows, new_versions, self.clock(), final)
            log.warning("dialplan %s rolled back to %s", flow, version.hash[:12])
            result = ReloadResult(True, f"rollback {flow}", [], [str(p) for p in problems], {flow: version.hash}, [], new_versions)
            self.last_result = result
            return result

    async def inspect_version(self, flow: str, hash: str) -> tuple[FlowVersion, Flow | None, list[Problem]] | None:
        """One stored version of ``flow`` (hash or 6+ char prefix) parsed and checked together
        with the other active flows, as a rollback to it would be: ``(version, parsed flow or
        None, problems)``, or None when no such version is stored. Changes nothing."""
        version = await self._find_version(flow, hash)
        if version is None:
            return None
        candidates = dict(self._current.sources) if self._current is not None else {}
        candidates[flow] = version
        flows, problems, _ = await asyncio.to_thread(self._build, candidates, set())
        return version, flows.get(flow), problems

    async def _find_version(self, flow: str, hash: str) -> FlowVersion | None:
        if len(hash) < 6:
            return None
        matches = [v for (f, h), v in self._history.items() if f == flow and h.startswith(hash)]
        if not matches:
            matches = [v for v in await self.store.versions(flow) if v.hash.startswith(hash)]
        if len({v.hash for v in matches}) != 1:
            return None
        return matches[0]

    # ------------------------------------------------------------ watching
    async def start(self) -> ReloadResult:
        """First load, then (if enabled) watch the directory."""
        result = await self.reload("startup")
        if self.watch_enabled:
            self._reloader.start_watch()
        return result

    def request_reload(self, reason: str) -> asyncio.Task[ReloadResult]:
        """Schedule a reload as an owned task (the composition root's SIGHUP handler)."""
        return self._reloader.request(reason)

    async def stop(self) -> None:
        await self._reloader.stop()
