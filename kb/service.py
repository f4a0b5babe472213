"""KbService: articles with versions and a review flow, Korean/English search, call-time
suggestions, usage feedback, script ticks, the notice board, reports, Markdown import/export.

Wiring (composition root, ``callcore/wiring.py``)::

    kb = KbService(KbRepository(sessionmaker), Analyzer(), store=recording_storage,  # recording.storage port
                   rules=load_rules(dialplans_dir / "kb" / "rules.yaml"))
    await kb.start()          # full-text index, synonyms, vocabulary (typo tolerance)
    app.state.kb = kb         # kb.routes finds it there

Who may do what (``kb.permissions``): ``kb.read`` search and read published articles;
``kb.write`` propose (create/edit drafts, send to review), mark articles on calls,
tick scripts, acknowledge notices; ``kb.publish`` (supervisor / QA lead) publish,
archive, edit published articles, edit synonyms, see reports.
"""

from __future__ import annotations

import asyncio
import difflib
import hashlib
import logging
import math
import mimetypes
import re
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import frontmatter
import yaml

from kb.analysis import Analyzer, Synonyms, Vocabulary, analyse_query, highlight
from kb.models import (
    KINDS, LANGUAGES, STATUSES, ArticleRow, ArticleVersionRow, AttachmentRow, FeedbackRow, NoticeRow, ProposalRow, ScriptTickRow,
)
from kb.notifier import KbNotifier
from kb.permissions import Actor
from kb.repository import Duplicate, KbRepository, SearchFilters
from kb.rules import CallContext, Candidate, RuleSet, intent_values, score
from recording.storage import NotFound as StorageNotFound
from recording.storage import Storage, StorageError

log = logging.getLogger("callcore.kb")

#: the shipped sample knowledge base (Korean + English articles for dialplans/main.yaml)
SAMPLE_DIR = Path(__file__).resolve().parent / "sample"

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,119}$")
_STEP_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
#: content fields kept in every version (what an edit changes, what a rollback restores)
CONTENT_FIELDS = ("title", "body", "kind", "steps", "language", "owner", "tags", "products", "queues", "intents",
                  "notice", "valid_from", "valid_until")
FEEDBACK_KINDS = ("used", "helpful")
LANGUAGE_MATCH = 1.5  # search: factor for articles written in the query's language
SYNONYM_WEIGHT = 0.5  # search: relevance through a synonym counts half
_HANGUL = re.compile(r"[가-힣]")
MAX_ATTACHMENT = 20 * 1024 * 1024
ATTACHMENT_TYPES = {"application/pdf", "image/png", "image/jpeg", "image/gif", "image/webp", "text/plain"}


# the shared domain errors (callcore/errors.py): kb's routes catch KbError, the common base
from callcore.errors import Conflict, DomainError as KbError, Forbidden, Invalid, NotFound, Unavailable  # noqa: E402,F401


# ------------------------------------------------------------------ validation (pure)
def _utc(v: Any, field_name: str) -> datetime | None:
    if v in (None, ""):
        return None
    if isinstance(v, datetime):
        return v if v.tzinfo else v.replace(tzinfo=timezone.utc)
    if isinstance(v, date):
        return datetime(v.year, v.month, v.day, tzinfo=timezone.utc)
    if isinstance(v, str):
        try:
            return _utc(datetime.fromisoformat(v), field_name)
        except ValueError:
            pass
    raise Invalid(f"{field_name}: expected a date or date-time (YYYY-MM-DD[THH:MM]), got {v!r}")


def _str_list(v: Any, field_name: str) -> list[str]:
    if v is None:
        return []
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, (list, tuple)) or not all(isinstance(x, (str, int)) and not isinstance(x, bool) for x in v):
        raise Invalid(f"{field_name}: expected a list of text values")
    out = [str(x).strip() for x in v if str(x).strip()]
    if any(len(x) > 80 for x in out):
        raise Invalid(f"{field_name}: values are at most 80 characters")
    return list(dict.fromkeys(out))


def _steps(v: Any) -> list[dict[str, str]]:
    if v in (None, []):
        return []
    if not isinstance(v, list):
        raise Invalid("steps: expected a list of {id, title, text}")
    out, seen = [], set()
    for i, s in enumerate(v, 1):
        if isinstance(s, str):
            s = {"title": s}
        if not isinstance(s, Mapping) or not str(s.get("title") or "").strip():
            raise Invalid(f"steps[{i}]: a step needs a title")
        sid = str(s.get("id") or f"step-{i}")
        if not _STEP_ID.match(sid) or sid in seen:
            raise Invalid(f"steps[{i}]: id {sid!r} must be unique (lower-case letters, digits, - and _)")
        seen.add(sid)
        out.append({"id": sid, "title": str(s["title"]).strip(), "text": str(s.get("text") or "").strip()})
    return out


def normalise_content(data: Mapping[str, Any], base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Validated article content (``base`` + the fields in ``data``); raises :class:`Invalid`."""
    unknown = set(data) - set(CONTENT_FIELDS) - {"slug", "status", "comment"}
    if unknown:
        raise Invalid(f"unknown field(s): {', '.join(sorted(unknown))}")
    c = dict(base or {})
    c.update({k: v for k, v in data.items() if k in CONTENT_FIELDS})
    title = str(c.get("title") or "").strip()
    if not title or len(title) > 300:
        raise Invalid("title: required, at most 300 characters")
    body = c.get("body") or ""
    if not isinstance(body, str) or len(body) > 200_000:
        raise Invalid("body: Markdown text of at most 200,000 characters")
    kind = c.get("kind") or "article"
    if kind not in KINDS:
        raise Invalid(f"kind: one of {', '.join(KINDS)}")
    language = c.get("language") or "ko"
    if language not in LANGUAGES:
        raise Invalid(f"language: one of {', '.join(LANGUAGES)}")
    steps = _steps(c.get("steps"))
    if kind == "script" and not steps:
        raise Invalid("a script needs steps (e.g. greeting, verification, resolution, closing)")
    owner = c.get("owner")
    if owner is not None and (not isinstance(owner, str) or len(owner) > 64):
        raise Invalid("owner: an agent id of at most 64 characters")
    vf, vu = _utc(c.get("valid_from"), "valid_from"), _utc(c.get("valid_until"), "valid_until")
    if vf and vu and vu <= vf:
        raise Invalid("valid_until must be after valid_from")
    return {
        "title": title, "body": body, "kind": kind, "steps": steps, "language": language, "owner": owner or None,
        "tags": _str_list(c.get("tags"), "tags"), "products": _str_list(c.get("products"), "products"),
        "queues": _str_list(c.get("queues"), "queues"), "intents": _str_list(c.get("intents"), "intents"),
        "notice": bool(c.get("notice") or False), "valid_from": vf, "valid_until": vu,
    }


def content_of(row: ArticleRow) -> dict[str, Any]:
    """The row's content as :func:`normalise_content` returns it (SQLite hands back naive date-times)."""
    c = {f: getattr(row, f) for f in CONTENT_FIELDS}
    for k in ("valid_from", "valid_until"):
        if c[k] is not None and c[k].tzinfo is None:
            c[k] = c[k].replace(tzinfo=timezone.utc)
    return c


def _jsonable(content: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in content.items()}


def to_markdown(slug: str, status: str, content: Mapping[str, Any]) -> str:
    """One article as Markdown with YAML front matter (the export / git format)."""
    meta: dict[str, Any] = {"slug": slug, "title": content["title"], "status": status, "language": content["language"]}
    if content.get("kind", "article") != "article":
        meta["kind"] = content["kind"]
    for key in ("owner", "tags", "products", "queues", "intents"):
        if content.get(key):
            meta[key] = content[key]
    if content.get("notice"):
        meta["notice"] = True
    for key in ("valid_from", "valid_until"):
        v = content.get(key)
        if v:
            meta[key] = v.isoformat() if isinstance(v, datetime) else str(v)
    if content.get("steps"):
        meta["steps"] = content["steps"]
    post = frontmatter.Post(content.get("body") or "", **meta)
    return frontmatter.dumps(post, handler=frontmatter.YAMLHandler(), sort_keys=False, allow_unicode=True) + "\n"


def parse_markdown(text: str, file: str) -> tuple[str, str, dict[str, Any]]:
    """``(slug, status, content)`` of a Markdown file with front matter; raises :class:`Invalid`."""
    try:
        post = frontmatter.loads(text)
    except yaml.YAMLError as exc:
        raise Invalid(f"{file}: front matter is not valid YAML: {exc}") from None
    meta = dict(post.metadata)
    slug = str(meta.pop("slug", "") or Path(file).stem)
    status = str(meta.pop("status", "draft"))
    if status not in STATUSES:
        raise Invalid(f"{file}: status must be one of {', '.join(STATUSES)}")
    if not _SLUG.match(slug):
        raise Invalid(f"{file}: slug {slug!r}: lower-case letters, digits and -")
    meta["body"] = post.content.strip() + "\n" if post.content.strip() else ""
    try:
        return slug, status, normalise_content(meta)
    except Invalid as exc:
        raise Invalid(f"{file}: {exc.message}") from None


# ------------------------------------------------------------------ the service
@dataclass(slots=True)
class ImportReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class KbService:
    def __init__(
        self,
        repository: KbRepository,
        analyzer: Analyzer,
        *,
        store: Storage,
        rules: RuleSet | None = None,
        clock: Callable[[], float] = time.time,
        usage_weight: float | None = None,
        notifier: KbNotifier | None = None,
        reminder_interval: float = 3600.0,
        reminder_days: int = 7,
        rules_file: Path | None = None,
        flow_nodes: Callable[[], Iterable[str] | None] | None = None,
        pops: Callable[[str], Mapping[str, Any] | None] | None = None,
    ) -> None:
        self.repository = repository
        self.analyzer = analyzer
        self.store = store
        self.rules = rules or RuleSet(())
        self._clock = clock
        self.usage_weight = self.rules.usage_weight if usage_weight is None else usage_weight
        self.synonyms = Synonyms(analyzer)
        self.vocabulary = Vocabulary()
        self.notifier = notifier
        self.reminder_interval = reminder_interval
        self.reminder_days = reminder_days
        #: the screen pop of a live or just-ended call (CTI), or None
        self.pops = pops
        self.rules_file = rules_file
        self._flow_nodes = flow_nodes
        self.rules_problems: list[str] = []
        self._reminded: set[tuple[int, str]] = set()  # (article id, day) already reminded
        self._reminder_task: asyncio.Task[None] | None = None

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), timezone.utc)

    async def start(self, *, sample_dir: Path | None = None) -> None:
        """Index, synonyms, vocabulary; Kiwi's model; then, into a knowledge base that holds
        nothing but (part of) the sample yet, the sample articles of ``sample_dir``.

        The model load (~1 s) holds the GIL the whole time — a thread would not keep the event
        loop running — so it happens here, while the composition root is still building
        services, before AMI, FastAGI and HTTP start: no call or request ever waits for it."""
        await self.repository.ensure_search_index()
        await self.reload_synonyms()
        self.vocabulary.add(await self.repository.all_search_terms())
        self.analyzer.warm()
        if sample_dir is not None:
            await self.load_sample_if_empty(sample_dir)
        if self.notifier is not None and self._reminder_task is None:
            self._reminder_task = asyncio.get_running_loop().create_task(self._reminder_loop(), name="kb-expiry-reminders")

    async def stop(self) -> None:
        """Cancel the reminder task (every other method awaits its own writes)."""
        task, self._reminder_task = self._reminder_task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _reminder_loop(self) -> None:
        while True:
            try:
                await self.remind()
            except Exception:  # noqa: BLE001 - logged; the next round tries again
                log.exception("knowledge base expiry reminders failed")
            await asyncio.sleep(self.reminder_interval)

    async def remind(self) -> int:
        """Send ``kb.expiring`` to the owner (and supervisors) of every published article past or
        within ``reminder_days`` of its validity date, once a day per article. Returns how many."""
        if self.notifier is None:
            return 0
        from kb.permissions import SYSTEM

        day = self.now().date().isoformat()
        self._reminded = {k for k in self._reminded if k[1] == day}  # only today's matter
        sent = 0
        for a in await self.expiring(SYSTEM, within_days=self.reminder_days):
            if (a["id"], day) in self._reminded:
                continue
            self._reminded.add((a["id"], day))
            self.notifier.expiring(a["owner"], {k: a[k] for k in ("id", "slug", "title", "owner", "valid_until", "expired")})
            sent += 1
        return sent

    def _announce(self, notice: NoticeRow | None) -> None:
        if notice is not None and self.notifier is not None and notice.id is not None:
            self.notifier.notice(notice_dict(notice))

    # ------------------------------------------------------------ articles
    def _index_fields(self, content: Mapping[str, Any]) -> tuple[str, str]:
        title = self.analyzer.index_text(content["title"] + " " + " ".join(content.get("tags") or ()))
        body_parts = [content.get("body") or ""] + [f"{s['title']} {s['text']}" for s in content.get("steps") or ()]
        return title, self.analyzer.index_text("\n".join(body_parts))

    async def _apply(self, row: ArticleRow, content: Mapping[str, Any]) -> None:
        for k, v in content.items():
            setattr(row, k, v)
        # a long body is milliseconds of Kiwi: analysed in a thread, off the event loop
        row.search_title, row.search_body = await asyncio.to_thread(self._index_fields, content)
        self.vocabulary.add(row.search_title.split() + row.search_body.split())

    async def create(self, data: Mapping[str, Any], actor: Actor) -> dict[str, Any]:
        actor.need("kb.write")
        slug = str(data.get("slug") or "").strip()
        if not _SLUG.match(slug):
            raise Invalid("slug: required; lower-case letters, digits and - (e.g. refund-procedure)")
        status = data.get("status") or "draft"
        if status not in STATUSES:
            raise Invalid(f"status: one of {', '.join(STATUSES)}")
        if status in ("published", "archived"):
            actor.need("kb.publish", f"only a reviewer may create an article as {status}; propose it as draft or review")
        content = normalise_content(data)
        if content["owner"] is None:
            content["owner"] = actor.subject
        if await self.repository.by_slug(slug) is not None:
            raise Conflict(f"an article with slug {slug!r} already exists")
        now = self.now()
        row = ArticleRow(slug=slug, status=status, version=1, created_at=now, updated_at=now)
        await self._apply(row, content)
        notice = None
        if status == "published":
            row.published_at, row.reviewed_by = now, actor.subject
            notice = NoticeRow(version=1, title=content["title"], change="new", created_by=actor.subject, created_at=now)
        version = ArticleVersionRow(version=1, content=_jsonable(content), status=status, author=actor.subject,
                                    comment=data.get("comment") or "created", created_at=now)
        try:
            row = await self.repository.save(row, version, notice)
        except Duplicate:
            raise Conflict(f"an article with slug {slug!r} already exists") from None
        self._announce(notice)
        return await self.article(row.id, actor)

    async def _row(self, article_id: int) -> ArticleRow:
        row = await self.repository.get(article_id)
        if row is None:
            raise NotFound(f"no article {article_id}")
        return row

    async def article(self, article_id: int, actor: Actor) -> dict[str, Any]:
        actor.need("kb.read")
        row = await self._row(article_id)
        if row.status != "published" and not actor.may("kb.write"):
            raise NotFound(f"no article {article_id}")
        out = article_dict(row)
        out["attachments"] = [attachment_dict(a) for a in await self.repository.attachments(row.id)]
        return out

    async def update(self, article_id: int, data: Mapping[str, Any], actor: Actor, *, comment: str | None = None) -> dict[str, Any]:
        """Every edit is a new version (unchanged content: no new version)."""
        actor.need("kb.write")
        row = await self._row(article_id)
        if "slug" in data and data["slug"] != row.slug:
            raise Invalid("slug cannot change (links and imports use it)")
        if "status" in data and data["status"] != row.status:
            raise Invalid("change the status with the status action (review / publish / archive)")
        if row.status in ("published", "archived"):
            actor.need("kb.publish", f"the article is {row.status}: a reviewer edits it; propose the change instead "
                                     f"(POST /api/kb/articles/{row.id}/proposals)")
        elif row.owner not in (None, actor.subject) and not actor.may("kb.publish"):
            raise Forbidden(f"the draft belongs to {row.owner}")
        content = normalise_content(data, content_of(row))
        if content == content_of(row):
            return await self.article(row.id, actor)
        return await self._new_version(row, content, actor, comment or data.get("comment") or "edited")

    async def _new_version(self, row: ArticleRow, content: dict[str, Any], actor: Actor, comment: str) -> dict[str, Any]:
        now = self.now()
        await self._apply(row, content)
        row.version += 1
        row.updated_at = now
        notice = None
        if row.status == "published":
            notice = NoticeRow(version=row.version, title=content["title"], change="changed", created_by=actor.subject, created_at=now)
        version = ArticleVersionRow(version=row.version, content=_jsonable(content), status=row.status, author=actor.subject,
                                    comment=comment[:500], created_at=now)
        try:
            row = await self.repository.save(row, version, notice)
        except Duplicate:  # another edit saved version N+1 first
            raise Conflict(f"article {row.id} was changed meanwhile (now past v{row.version - 1}); reload it and edit again") from None
        self._announce(notice)
        return await self.article(row.id, actor)

    # ------------------------------------------------------------ proposals (agents → reviewers)
    async def propose(self, article_id: int, data: Mapping[str, Any], actor: Actor, *, comment: str | None = None) -> dict[str, Any]:
        """Any agent proposes a change to a published article; it stays as it is until a reviewer accepts."""
        actor.need("kb.write")
        row = await self._row(article_id)
        if row.status != "published":
            raise Invalid(f"the article is {row.status}: edit it directly (proposals are for published articles)")
        if "slug" in data or "status" in data:
            raise Invalid("a proposal changes the content only (not slug or status)")
        content = normalise_content(data, content_of(row))
        if content == content_of(row):
            raise Invalid("the proposal changes nothing")
        p = await self.repository.add_proposal(ProposalRow(
            article_id=row.id, base_version=row.version, content=_jsonable(content), author=actor.subject,
            comment=(comment or data.get("comment") or None), status="open", created_at=self.now(),
        ))
        return await self._proposal_dict(p, row)

    async def _proposal_dict(self, p: ProposalRow, row: ArticleRow | None = None) -> dict[str, Any]:
        row = row or await self._row(p.article_id)
        proposed = normalise_content(p.content)
        diff = "".join(difflib.unified_diff(
            to_markdown(row.slug, "-", content_of(row)).splitlines(keepends=True),
            to_markdown(row.slug, "-", proposed).splitlines(keepends=True),
            fromfile=f"{row.slug}@v{row.version}", tofile=f"{row.slug}@proposal-{p.id}",
        ))
        return {"id": p.id, "article_id": p.article_id, "slug": row.slug, "base_version": p.base_version,
                "current_version": row.version, "author": p.author, "comment": p.comment, "status": p.status,
                "decided_by": p.decided_by, "decided_at": _iso(p.decided_at), "created_at": _iso(p.created_at),
                "changed": sorted(k for k in CONTENT_FIELDS if proposed.get(k) != content_of(row).get(k)), "diff": diff}

    async def proposals(self, actor: Actor, *, article_id: int | None = None, status: str | None = "open") -> list[dict[str, Any]]:
        actor.need("kb.write")
        if status not in (None, "open", "accepted", "rejected"):
            raise Invalid("status: open, accepted or rejected")
        ps = await self.repository.proposals(article_id=article_id, status=status)
        rows = await self.repository.by_ids({p.article_id for p in ps})
        return [await self._proposal_dict(p, rows.get(p.article_id)) for p in ps if p.article_id in rows]

    async def decide(self, proposal_id: int, accept: bool, actor: Actor) -> dict[str, Any]:
        """A reviewer accepts (a new version of the article, on the notice board) or rejects a proposal."""
        actor.need("kb.publish", "reviewers (supervisor / QA lead) decide proposals")
        p = await self.repository.proposal(proposal_id)
        if p is None:
            raise NotFound(f"no proposal {proposal_id}")
        if p.status != "open" or not await self.repository.decide_proposal(p.id, "accepted" if accept else "rejected",
                                                                            actor.subject, self.now()):
            raise Conflict(f"proposal {proposal_id} was already {p.status if p.status != 'open' else 'decided'}")
        article = None
        if accept:
            note = f"proposal #{p.id} by {p.author}" + (f": {p.comment}" if p.comment else "")
            article = await self.update(p.article_id, normalise_content(p.content), actor, comment=note)
        out = await self._proposal_dict(await self.repository.proposal(p.id))  # type: ignore[arg-type]
        return out | {"article": article}

    async def set_status(self, article_id: int, status: str, actor: Actor) -> dict[str, Any]:
        """draft → review (author) → published (reviewer) → archived (reviewer); back to draft."""
        if status not in STATUSES:
            raise Invalid(f"status: one of {', '.join(STATUSES)}")
        actor.need("kb.write")
        row = await self._row(article_id)
        if status == row.status:
            return await self.article(row.id, actor)
        if status in ("published", "archived") or row.status in ("published", "archived"):
            actor.need("kb.publish", "publishing and archiving are for reviewers (supervisor / QA lead)")
        now = self.now()
        notice = None
        if status == "published":
            first = row.published_at is None
            row.published_at, row.reviewed_by = now, actor.subject
            notice = NoticeRow(version=row.version, title=row.title, change="new" if first else "changed",
                               created_by=actor.subject, created_at=now)
            existing = [n for n in await self.repository.notices() if n.article_id == row.id and n.version == row.version]
            if existing:
                notice = None
        row.status = status
        row.updated_at = now
        try:
            row = await self.repository.save(row, None, notice)
        except Duplicate:  # published concurrently: that notice stands
            raise Conflict(f"article {row.id} was published meanwhile") from None
        self._announce(notice)
        return await self.article(row.id, actor)

    async def versions(self, article_id: int, actor: Actor) -> list[dict[str, Any]]:
        actor.need("kb.write")
        await self._row(article_id)
        return [
            {"version": v.version, "status": v.status, "author": v.author, "comment": v.comment,
             "created_at": v.created_at.isoformat(), "title": v.content.get("title")}
            for v in await self.repository.versions(article_id)
        ]

    async def _version_content(self, article_id: int, version: int) -> dict[str, Any]:
        v = await self.repository.version(article_id, version)
        if v is None:
            raise NotFound(f"article {article_id} has no version {version}")
        return normalise_content(v.content)

    async def diff(self, article_id: int, a: int, b: int, actor: Actor) -> dict[str, Any]:
        """Unified diff of two versions, as their Markdown + front matter."""
        actor.need("kb.write")
        row = await self._row(article_id)
        old, new = await self._version_content(article_id, a), await self._version_content(article_id, b)
        lines = difflib.unified_diff(
            to_markdown(row.slug, "-", old).splitlines(keepends=True),
            to_markdown(row.slug, "-", new).splitlines(keepends=True),
            fromfile=f"{row.slug}@v{a}", tofile=f"{row.slug}@v{b}",
        )
        changed = sorted(k for k in CONTENT_FIELDS if old.get(k) != new.get(k))
        return {"article_id": article_id, "from": a, "to": b, "changed": changed, "diff": "".join(lines)}

    async def rollback(self, article_id: int, version: int, actor: Actor) -> dict[str, Any]:
        """Restore an older version's content as a new version (history is never rewritten)."""
        row = await self._row(article_id)
        content = await self._version_content(article_id, version)
        return await self.update(row.id, content, actor, comment=f"rollback to v{version}")

    # ------------------------------------------------------------ attachments
    async def add_attachment(self, article_id: int, filename: str, content_type: str | None, data: bytes, actor: Actor) -> dict[str, Any]:
        actor.need("kb.write")
        row = await self._row(article_id)
        name = Path(filename or "").name.strip()
        if not name or len(name) > 255:
            raise Invalid("an attachment needs a file name")
        ctype = (content_type or mimetypes.guess_type(name)[0] or "application/octet-stream").split(";")[0].strip().lower()
        if ctype not in ATTACHMENT_TYPES:
            raise Invalid(f"attachment type {ctype!r} not accepted ({', '.join(sorted(ATTACHMENT_TYPES))})")
        if not data:
            raise Invalid("the attachment is empty")
        if len(data) > MAX_ATTACHMENT:
            raise Invalid(f"an attachment is at most {MAX_ATTACHMENT // (1024 * 1024)} MB")
        digest = hashlib.sha256(data).hexdigest()
        key = f"kb/{row.id}/{digest}"  # never the user's file name
        try:
            await self.store.put(key, data)
        except StorageError as exc:
            raise Unavailable(f"attachment storage failed ({exc}); nothing was saved, try again") from None
        att = await self.repository.add_attachment(
            AttachmentRow(article_id=row.id, filename=name, content_type=ctype, size=len(data), sha256=digest,
                          storage_key=key, created_by=actor.subject, created_at=self.now())
        )
        return attachment_dict(att)

    async def attachment(self, attachment_id: int, actor: Actor) -> tuple[dict[str, Any], bytes]:
        actor.need("kb.read")
        att = await self.repository.attachment(attachment_id)
        if att is None:
            raise NotFound(f"no attachment {attachment_id}")
        await self.article(att.article_id, actor)  # same visibility as its article
        try:
            return attachment_dict(att), await self.store.read(att.storage_key)
        except StorageNotFound:
            raise NotFound(f"attachment {attachment_id}: its file is missing from the storage") from None
        except StorageError as exc:
            raise Unavailable(f"attachment storage failed ({exc}); try again") from None

    # ------------------------------------------------------------ search
    async def search(self, q: str, actor: Actor, *, queue: str | None = None, tag: str | None = None,
                     status: str | None = "published", language: str | None = None, kind: str | None = None,
                     limit: int = 10, offset: int = 0) -> dict[str, Any]:
        actor.need("kb.read")
        if status not in (None, *STATUSES):
            raise Invalid(f"status: one of {', '.join(STATUSES)}")
        if status != "published" and not actor.may("kb.write"):
            raise Forbidden("searching unpublished articles needs kb.write")
        if not 1 <= limit <= 100 or offset < 0:
            raise Invalid("limit is 1..100 and offset ≥ 0")
        if len(q) > 500:
            raise Invalid("the query is at most 500 characters")
        query = analyse_query(q, self.analyzer, self.synonyms, self.vocabulary)
        filters = SearchFilters(status=status, queue=queue, tag=tag, language=language, kind=kind)
        now = self.now()
        if query.empty:
            rows = await self.repository.browse(filters, now=now, limit=limit, offset=offset) if not q.strip() else []
            page = [(r, 0.0, 0.0) for r in rows]
            total = len(rows)
        else:
            # the query's own (or typo-corrected) terms count fully, terms added by synonyms less
            primary = [t for t in query.expanded if t not in query.synonyms]
            q_lang = "ko" if _HANGUL.search(q) else "en"
            ranked: list[tuple[int, float, float]] = []

            def choose(hits: list[Any]) -> list[int]:
                # relevance × usage (helpful marks), and a nudge for articles in the language of the query
                ranked.extend(sorted(
                    ((h.id, h.relevance, h.relevance * (1 + self.usage_weight * math.log1p(h.helpful))
                      * (LANGUAGE_MATCH if h.language == q_lang else 1.0)) for h in hits),
                    key=lambda t: (-t[2], t[0]),
                ))
                return [i for i, _, _ in ranked[offset : offset + limit]]

            _hits, rows_by_id = await self.repository.search_page(primary, filters, choose, synonyms=query.synonyms,
                                                                  synonym_weight=SYNONYM_WEIGHT, now=now)
            total = len(ranked)
            chosen = ranked[offset : offset + limit]
            page = [(rows_by_id[i], rel, final) for i, rel, final in chosen if i in rows_by_id]
        marks = query.expanded
        results = []
        for r, rel, final in page:
            d = summary_dict(r)
            d.update(
                score=round(final, 4), relevance=round(rel, 4),
                highlights={"title": highlight(r.title, marks), "snippet": highlight(_plain(r.body), marks, width=160)},
            )
            results.append(d)
        return {
            "query": q, "terms": query.terms, "searched": query.expanded, "corrected": query.corrected,
            "synonyms": query.synonyms, "total": total, "results": results,
        }

    # ------------------------------------------------------------ rules
    def reload_rules(self) -> dict[str, Any]:
        """Re-read the rules file; like a dialplan reload, a file with errors is refused and the
        rules in use stay. Returns what happened and every problem (``file:line:col: …``)."""
        from kb.rules import load_rules

        if self.rules_file is None:
            raise Invalid("this knowledge base was started without a rules file")
        nodes = self._flow_nodes() if self._flow_nodes is not None else None
        rules, problems = load_rules(self.rules_file, flow_nodes=nodes)
        self.rules_problems = [str(p) for p in problems]
        if rules is not None:
            self.rules = rules
        return {"reloaded": rules is not None, "problems": self.rules_problems, **self.rules_summary()}

    def rules_summary(self) -> dict[str, Any]:
        r = self.rules
        return {"file": r.source, "limit": r.limit, "usage_weight": r.usage_weight, "notice_days": r.notice_days,
                "language_bonus": r.language_bonus,
                "rules": [{"name": x.name, "match": x.match, "weight": x.weight, "when": list(x.when),
                           "articles": list(x.articles), "nodes": {k: list(v) for k, v in x.nodes.items()},
                           "because": dict(x.because)} for x in r.rules]}

    # ------------------------------------------------------------ suggestions
    async def suggest(self, ctx: CallContext, *, limit: int | None = None) -> list[dict[str, Any]]:
        """The top articles for a call, each with why (rules in ``dialplans/kb/rules.yaml``)."""
        rules = self.rules
        now = self.now()
        intents = intent_values(ctx.intent)
        for rule in rules.rules:
            if rule.match == "path":
                for node in ctx.path:
                    intents.extend(rule.nodes.get(node, ()))
        tags = list(ctx.dispositions) + ([f"tier:{ctx.tier}"] if ctx.tier else [])
        slugs = [s for rule in rules.rules if rule.articles for s in rule.articles]
        since = now - timedelta(days=rules.notice_days)
        rows = await self.repository.linked(
            intents=list(dict.fromkeys(intents)), queues=[ctx.queue] if ctx.queue else [], tags=tags, slugs=slugs,
            notices_since=since if any(r.match == "notice" for r in rules.rules) else None, now=now,
            broad_limit=limit or rules.limit,
        )
        candidates = [
            Candidate(r.id, r.slug, r.language, tuple(r.intents or ()), tuple(r.queues or ()), tuple(r.tags or ()),
                      r.helpful_count, bool(r.notice and r.published_at and _aware(r.published_at) >= since))
            for r in rows
        ]
        best = score(rules, ctx, candidates, limit or rules.limit)
        by_id = await self.repository.by_ids(s.candidate.id for s in best)
        out = []
        for s in best:
            row = by_id.get(s.candidate.id)
            if row is None:  # deleted meanwhile
                continue
            d = summary_dict(row)
            d.update(
                score=s.score, reasons=s.reasons,
                because={lang: _because(lang, [r["text"][lang] for r in s.reasons]) for lang in ("ko", "en")},
            )
            if row.kind == "script":
                d["steps"] = row.steps
            out.append(d)
        return out

    async def enrich_pop(self, pop: Mapping[str, Any]) -> dict[str, Any]:
        """The screen-pop enrichment under the key ``kb``: context used and suggestions."""
        ctx = CallContext.from_pop(pop)
        return {"context": _ctx_dict(ctx), "suggestions": await self.suggest(ctx)}

    async def enrich(self, call: Any, context: Mapping[str, Any]) -> dict[str, Any]:
        """The CTI pop enricher (``cti.pops.PopBuilder.add_enricher("kb", …)``): ``context`` is the
        preload's ``{"customer", "ivr", "previous"}``, ``call`` the live call (its queue)."""
        return await self.enrich_pop({
            "queue": getattr(call, "queue", None), "customer": context.get("customer"), "ivr": context.get("ivr"),
            "previous_interactions": context.get("previous") or [],
        })

    def _pop(self, call_id: str) -> Mapping[str, Any] | None:
        return self.pops(call_id) if self.pops is not None else None

    async def call_suggestions(self, call_id: str, actor: Actor) -> dict[str, Any]:
        """The suggestions for a live (or just-ended) call: the pop's, or computed from the pop."""
        actor.need("kb.read")
        _check_call_id(call_id)
        pop = self._pop(call_id)
        if pop is None:
            raise NotFound(f"no live call {call_id}")
        enriched = pop.get("kb")
        return dict(enriched) if isinstance(enriched, Mapping) else await self.enrich_pop(pop)

    # ------------------------------------------------------------ on the call
    async def mark(self, call_id: str, article_id: int, kind: str, actor: Actor, *, suggested: bool | None = None) -> dict[str, Any]:
        """The agent marks an article used / helpful on a call (helpful implies used); idempotent.
        ``suggested`` (was it among the pop's suggestions?) is read from the call's pop when known."""
        actor.need("kb.write")
        if kind not in FEEDBACK_KINDS:
            raise Invalid(f"kind: one of {', '.join(FEEDBACK_KINDS)}")
        _check_call_id(call_id)
        row = await self._row(article_id)
        pop = self._pop(call_id)
        enriched = pop.get("kb") if pop is not None else None
        if isinstance(enriched, Mapping):
            suggested = any(s.get("id") == row.id for s in enriched.get("suggestions") or ())
        suggested = bool(suggested)
        kinds = ["used", "helpful"] if kind == "helpful" else ["used"]
        added = []
        for k in kinds:
            if await self.repository.add_feedback(FeedbackRow(call_id=call_id, article_id=row.id, kind=k, agent_id=actor.subject,
                                                              suggested=suggested, created_at=self.now())):
                added.append(k)
        row = await self._row(article_id)
        return {"call_id": call_id, "article_id": row.id, "recorded": added, "used_count": row.used_count,
                "helpful_count": row.helpful_count}

    async def tick(self, call_id: str, article_id: int, step: str, actor: Actor, *, done: bool = True) -> dict[str, Any]:
        actor.need("kb.write")
        _check_call_id(call_id)
        row = await self._row(article_id)
        if row.kind != "script":
            raise Invalid(f"article {article_id} is not a call script")
        if step not in {s["id"] for s in row.steps}:
            raise Invalid(f"script {row.slug!r} has no step {step!r} ({', '.join(s['id'] for s in row.steps)})")
        if done:
            await self.repository.tick(ScriptTickRow(call_id=call_id, article_id=row.id, step=step, agent_id=actor.subject,
                                                     ticked_at=self.now()))
        else:
            await self.repository.untick(call_id, row.id, step)
        return await self.call_record(call_id, actor)

    async def call_record(self, call_id: str, actor: Actor) -> dict[str, Any]:
        """What the knowledge base keeps on a call: articles used/helpful and script ticks."""
        actor.need("kb.read")
        _check_call_id(call_id)
        feedback = await self.repository.feedback_for_call(call_id)
        ticks = await self.repository.ticks(call_id)
        return {
            "call_id": call_id,
            "articles": [{"article_id": f.article_id, "kind": f.kind, "agent_id": f.agent_id, "suggested": f.suggested,
                          "at": f.created_at.isoformat()} for f in feedback],
            "script_ticks": [{"article_id": t.article_id, "step": t.step, "agent_id": t.agent_id, "at": t.ticked_at.isoformat()}
                             for t in ticks],
        }

    # ------------------------------------------------------------ notice board
    async def notice_board(self, actor: Actor, *, days: int = 30) -> list[dict[str, Any]]:
        actor.need("kb.read")
        notices = await self.repository.notices(since=self.now() - timedelta(days=days))
        acks = await self.repository.acknowledgements([n.id for n in notices])
        by_notice: dict[int, list[Any]] = {}
        for a in acks:
            by_notice.setdefault(a.notice_id, []).append(a)
        out = []
        for n in notices:
            mine = next((a for a in by_notice.get(n.id, []) if a.agent_id == actor.subject), None)
            d = notice_dict(n) | {"acknowledged_at": mine.acked_at.isoformat() if mine else None}
            if actor.may("kb.publish"):
                d["acknowledged_by"] = sorted(a.agent_id for a in by_notice.get(n.id, []))
            out.append(d)
        return out

    async def acknowledge(self, notice_id: int, actor: Actor) -> dict[str, Any]:
        actor.need("kb.read")
        if await self.repository.notice(notice_id) is None:
            raise NotFound(f"no notice {notice_id}")
        ack = await self.repository.acknowledge(notice_id, actor.subject)
        return {"notice_id": notice_id, "agent_id": ack.agent_id, "acknowledged_at": ack.acked_at.isoformat()}

    # ------------------------------------------------------------ reports
    async def expiring(self, actor: Actor, *, within_days: int = 14) -> list[dict[str, Any]]:
        """Published articles past (or within ``within_days`` of) their validity date: reminders for their owners."""
        actor.need("kb.write")
        now = self.now()
        rows = await self.repository.list_articles(status="published", expired_before=now + timedelta(days=within_days))
        return [
            summary_dict(r) | {"owner": r.owner, "valid_until": _aware(r.valid_until).isoformat(),
                               "expired": _aware(r.valid_until) <= now}
            for r in rows
        ]

    async def usage_report(self, actor: Actor) -> list[dict[str, Any]]:
        actor.need("kb.publish")
        return [summary_dict(r) | {"used_count": r.used_count} for r in await self.repository.usage()]

    async def gaps_report(self, actor: Actor, *, days: int | None = None) -> dict[str, Any]:
        """Calls with a disposition but no article marked helpful: where the knowledge base fell short."""
        actor.need("kb.publish")
        since = self.now() - timedelta(days=days) if days else None
        calls = await self.repository.gaps(since=since)
        total = await self.repository.calls_with_disposition(since=since)
        by_disp: dict[str, int] = {}
        for c in calls:
            by_disp[c["disposition"]] = by_disp.get(c["disposition"], 0) + 1
        return {
            "calls_with_disposition": total,
            "without_helpful_article": len(calls),
            "gap_rate": round(len(calls) / total, 4) if total else 0.0,
            "by_disposition": dict(sorted(by_disp.items(), key=lambda kv: (-kv[1], kv[0]))),
            "calls": calls,
        }

    # ------------------------------------------------------------ synonyms
    async def reload_synonyms(self) -> None:
        self.synonyms.replace([g.terms for g in await self.repository.synonyms()])

    async def list_synonyms(self, actor: Actor) -> list[dict[str, Any]]:
        actor.need("kb.read")
        return [{"id": g.id, "terms": g.terms} for g in await self.repository.synonyms()]

    async def save_synonyms(self, terms: Sequence[str], actor: Actor, *, group_id: int | None = None) -> dict[str, Any]:
        actor.need("kb.publish")
        clean = _str_list(list(terms), "terms")
        if len(clean) < 2:
            raise Invalid("a synonym group needs at least two terms")
        if group_id is None:
            row = await self.repository.add_synonyms(clean)
        else:
            row = await self.repository.update_synonyms(group_id, clean)
            if row is None:
                raise NotFound(f"no synonym group {group_id}")
        await self.reload_synonyms()
        return {"id": row.id, "terms": row.terms}

    async def delete_synonyms(self, group_id: int, actor: Actor) -> None:
        actor.need("kb.publish")
        if not await self.repository.delete_synonyms(group_id):
            raise NotFound(f"no synonym group {group_id}")
        await self.reload_synonyms()

    # ------------------------------------------------------------ import / export
    async def import_dir(self, directory: Path, actor: Actor, *, only_new: bool = False) -> ImportReport:
        """Import every ``*.md`` (Markdown + YAML front matter), upserting by slug; a synonyms file
        ``synonyms.yaml`` (a list of lists) replaces nothing and adds the groups not there yet."""
        actor.need("kb.publish")
        directory = Path(directory)
        if not directory.is_dir():
            raise Invalid(f"{directory}: not a directory")
        report = ImportReport()
        for path in sorted(directory.glob("*.md")):
            try:
                slug, status, content = parse_markdown(path.read_text(encoding="utf-8"), path.name)
            except (Invalid, UnicodeDecodeError) as exc:
                report.errors.append(getattr(exc, "message", f"{path.name}: {exc}"))
                continue
            existing = await self.repository.by_slug(slug)
            if existing is not None and only_new:
                report.unchanged.append(slug)
                continue
            try:
                if existing is None:
                    await self.create({"slug": slug, "status": status, **content, "comment": f"imported from {path.name}"}, actor)
                    report.created.append(slug)
                    continue
                changed = content != content_of(existing)
                if changed:
                    await self.update(existing.id, content, actor, comment=f"imported from {path.name}")
                if status != existing.status:
                    await self.set_status(existing.id, status, actor)
                (report.updated if changed or status != existing.status else report.unchanged).append(slug)
            except KbError as exc:
                report.errors.append(f"{path.name}: {exc.message}")
        syn = directory / "synonyms.yaml"
        if syn.is_file():
            try:
                groups = yaml.safe_load(syn.read_text(encoding="utf-8")) or []
                if not isinstance(groups, list):
                    raise Invalid("synonyms.yaml: a list of lists of terms")
                have = {tuple(g.terms) for g in await self.repository.synonyms()}
                for g in groups:
                    terms = _str_list(g, "synonyms.yaml")
                    if tuple(terms) not in have:
                        await self.save_synonyms(terms, actor)
            except (KbError, yaml.YAMLError) as exc:
                report.errors.append(f"synonyms.yaml: {getattr(exc, 'message', exc)}")
        return report

    async def export_dir(self, directory: Path, actor: Actor) -> list[str]:
        actor.need("kb.publish")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        written = []
        for row in await self.repository.list_articles():
            (directory / f"{row.slug}.md").write_text(to_markdown(row.slug, row.status, content_of(row)), encoding="utf-8")
            written.append(f"{row.slug}.md")
        groups = [g.terms for g in await self.repository.synonyms()]
        if groups:
            (directory / "synonyms.yaml").write_text(yaml.safe_dump(groups, allow_unicode=True), encoding="utf-8")
            written.append("synonyms.yaml")
        return written

    async def load_sample_if_empty(self, directory: Path) -> ImportReport | None:
        """First run: a knowledge base with no article of its own gets the shipped sample
        (``kb/sample``). An import cut short (the server stopped during its first start) is
        completed on the next start; articles already there are never touched."""
        directory = Path(directory)
        if not directory.is_dir():
            return None
        sample: dict[str, Path] = {}
        for path in sorted(directory.glob("*.md")):
            try:
                sample[parse_markdown(path.read_text(encoding="utf-8"), path.name)[0]] = path
            except (Invalid, UnicodeDecodeError):
                continue
        have = {r.slug for r in await self.repository.list_articles()}
        if not have <= set(sample) or have == set(sample):
            return None
        from kb.permissions import SYSTEM

        report = await self.import_dir(directory, SYSTEM, only_new=True)
        log.info("knowledge base: loaded the sample (%d articles) from %s", len(report.created), directory)
        for e in report.errors:
            log.warning("knowledge base sample: %s", e)
        return report


# ------------------------------------------------------------------ serialisers
def _aware(dt: datetime) -> datetime:
    return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)


def _iso(dt: datetime | None) -> str | None:
    return _aware(dt).isoformat() if dt else None


def summary_dict(r: Any) -> dict[str, Any]:  # an ArticleRow or a plain row of its columns
    return {"id": r.id, "slug": r.slug, "title": r.title, "kind": r.kind, "status": r.status, "language": r.language,
            "tags": list(r.tags or ()), "queues": list(r.queues or ()), "intents": list(r.intents or ()),
            "helpful_count": r.helpful_count, "version": r.version}


def article_dict(r: ArticleRow) -> dict[str, Any]:
    return summary_dict(r) | {
        "body": r.body, "steps": list(r.steps or ()), "owner": r.owner, "products": list(r.products or ()),
        "notice": r.notice, "valid_from": _iso(r.valid_from), "valid_until": _iso(r.valid_until),
        "created_at": _iso(r.created_at), "updated_at": _iso(r.updated_at), "published_at": _iso(r.published_at),
        "reviewed_by": r.reviewed_by, "used_count": r.used_count,
    }


def notice_dict(n: NoticeRow) -> dict[str, Any]:
    return {"id": n.id, "article_id": n.article_id, "version": n.version, "title": n.title, "change": n.change,
            "created_at": _iso(n.created_at), "created_by": n.created_by}


def attachment_dict(a: AttachmentRow) -> dict[str, Any]:
    return {"id": a.id, "article_id": a.article_id, "filename": a.filename, "content_type": a.content_type,
            "size": a.size, "sha256": a.sha256, "created_at": _iso(a.created_at)}


def _because(lang: str, texts: Iterable[str]) -> str:
    joined = "; ".join(texts)
    return f"추천 이유: {joined}" if lang == "ko" else f"suggested because: {joined}"


def _ctx_dict(ctx: CallContext) -> dict[str, Any]:
    return {"intent": ctx.intent, "path": list(ctx.path), "queue": ctx.queue, "tier": ctx.tier,
            "dispositions": list(ctx.dispositions), "language": ctx.language}


_MD = re.compile(r"[#*_`>|\[\]()!-]+")


def _plain(md: str) -> str:
    return re.sub(r"\s+", " ", _MD.sub(" ", md)).strip()


_CALL_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def _check_call_id(call_id: str) -> None:
    if not _CALL_ID.match(call_id or ""):
        raise Invalid("call id: 1-64 characters of letters, digits, . _ : -")
