"""QA service: evaluations (drafts, submission, revisions), agent acknowledge/dispute,
lead resolution, the sampled work list and calibration sessions.

States (enforced here, server-side)::

    draft ──submit──▶ submitted ──acknowledge (agent, within the window)──▶ acknowledged
                          │  └──dispute (agent, within the window)──▶ disputed ──resolve (lead)──▶ resolved
                          └── revise (evaluator or lead; new revision) keeps the state

A draft is edited in place (its one revision is replaced). Anything after
submission changes only through a new revision, recorded in the history with
who, when and why. Scores are always computed from the form version the
evaluation was made on (:mod:`qa.scoring`); a client's score is never read.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Callable, Iterable, Mapping

from callcore.db import utcnow
from qa import calibration as calib
from qa.forms import Form
from qa.registry import FormRegistry
from qa.repository import QaRepository, RecordingSource, day_bounds
from qa.sampling import assign, draw, period_bounds, period_key
from qa.scoring import ScoreResult, ScoringError, score

log = logging.getLogger(__name__)

RESOLUTIONS = ("upheld", "changed")
MAX_COMMENT = 4000


class QaError(Exception):
    status = 400

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


class NotFound(QaError):
    status = 404


class Forbidden(QaError):
    status = 403


class Conflict(QaError):
    status = 409


@dataclass(frozen=True)
class Actor:
    """Who acts, as QA sees them (built from the caller's :class:`~auth.tokens.Principal`)."""

    subject: str  # QA identity: the principal's subject without a ``user:`` prefix (as in sampling.yaml)
    role: str
    evaluates: bool = False  # permission qa.evaluate
    is_lead: bool = False  # permission qa.lead (or listed in settings.qa_leads)
    agent_id: str | None = None  # the agent this caller is (their own evaluations)
    #: queue scope (issue 11, auth/scope.py): a QA user limited to queues sees and scores only
    #: the evaluations and recordings of those queues (empty: every queue)
    queues: frozenset[str] = frozenset()

    def sees(self, queue: str | None) -> bool:
        return not self.queues or (queue is not None and queue in self.queues)

    def __str__(self) -> str:  # the audit log's actor name
        return f"{self.role}:{self.subject}"


def _clean_comments(form: Form, comments: Iterable[Mapping[str, Any]] | None, duration: float | None) -> list[dict[str, Any]]:
    out = []
    for i, c in enumerate(comments or []):
        text = str(c.get("text") or "").strip()
        if not text:
            raise QaError(f"comment {i + 1}: text is empty")
        if len(text) > MAX_COMMENT:
            raise QaError(f"comment {i + 1}: longer than {MAX_COMMENT} characters")
        at = c.get("at")
        if at is not None:
            if isinstance(at, bool) or not isinstance(at, (int, float)) or at < 0:
                raise QaError(f"comment {i + 1}: 'at' must be seconds >= 0")
            if duration is not None and at > duration + 0.5:
                raise QaError(f"comment {i + 1}: 'at' {at:g} s is after the end of the recording ({duration:g} s)")
            at = float(at)
        q = c.get("question")
        if q is not None and form.question(str(q)) is None:
            raise QaError(f"comment {i + 1}: no question {q!r} in form {form.id!r}")
        out.append({"text": text, "at": at, "question": str(q) if q is not None else None})
    return out


class QaService:
    def __init__(
        self, registry: FormRegistry, repo: QaRepository, recordings: RecordingSource, *,
        respond_days: float = 14, leads: Iterable[str] = (), clock: Callable[[], datetime] = utcnow, audit: Any = None,
    ) -> None:
        self.audit = audit
        self.registry = registry
        self.repo = repo
        self.recordings = recordings
        self.respond_window = timedelta(days=respond_days)
        self.leads = set(leads)
        self.clock = clock
        #: reports (issue 16): ``observer(info)`` hears every score an evaluation gets (submitted,
        #: revised, dispute resolved with a change); calibration sessions are not told
        self.observer: Callable[[dict[str, Any]], None] | None = None

    def actor(self, principal: Any) -> Actor:
        """``principal``: an :class:`auth.tokens.Principal` (``subject``, ``role``, ``can()``, ``agent_id``)."""
        subject = principal.subject[5:] if principal.subject.startswith("user:") else principal.subject
        return Actor(
            subject, principal.role, principal.can("qa.evaluate"),
            principal.can("qa.lead") or subject in self.leads, principal.agent_id or subject,
            frozenset(getattr(principal, "queues", ()) or ()),
        )

    async def _audit(self, actor: Actor, action: str, target: Any, details: dict[str, Any]) -> None:
        """Submissions, revisions and responses also go to the audit log (security package)."""
        if self.audit is not None:
            await self.audit.record(str(actor), f"qa.{action}", target, details)

    async def _scored(self, evaluation_id: int) -> None:
        """Tell the observer (reports) the evaluation's current score; never fails the request."""
        if self.observer is None:
            return
        try:
            ev = await self.repo.evaluation(evaluation_id)
            if ev is None or ev["calibration_id"] is not None or ev["state"] == "draft":
                return
            rec = await self.recordings.recording(ev["recording_id"])
            started = rec.started_at if rec is not None else None
            self.observer({
                "evaluation_id": str(ev["id"]), "revision": int(ev["revision"]), "agent_id": ev["agent_id"],
                "form_id": ev["form_id"], "total": ev["total"], "critical_failed": bool(ev["critical_failed"]),
                "call_id": ev["call_id"], "queue": rec.queue if rec is not None else None,
                "at": self.clock().timestamp(), "call_started_at": started.timestamp() if started else None,
            })
        except Exception:  # noqa: BLE001 - reports are bookkeeping; the evaluation is stored
            log.exception("QA observer failed for evaluation %s", evaluation_id)

    async def start(self) -> None:
        await self.registry.start()

    async def stop(self) -> None:
        await self.registry.stop()

    # ------------------------------------------------------------ scoring helpers
    def forms(self) -> Any:
        """The active forms and rules (503 while ``qa-forms/`` has never loaded cleanly)."""
        if not self.registry.loaded:
            raise QaError(f"QA forms not loaded from {self.registry.directory} (see `callcore qa check`)", 503)
        return self.registry.current

    async def _form(self, form_id: str, hash: str | None = None) -> tuple[Form, str]:
        if hash is None:
            self.forms()
            active = self.registry.form(form_id)
            if active is None:
                raise NotFound(f"no form {form_id!r}")
            return active
        form = await self.registry.version(form_id, hash)
        if form is None:
            raise NotFound(f"form {form_id!r} version {hash[:12]} is not stored")
        return form, hash

    @staticmethod
    def _score(form: Form, answers: Mapping[str, Any], complete: bool) -> ScoreResult:
        try:
            return score(form, answers, complete=complete)
        except ScoringError as exc:
            raise QaError("; ".join(exc.problems), 422) from None

    def _content(self, form: Form, answers: Mapping[str, Any], comments: list[dict[str, Any]], complete: bool, reason: str | None = None) -> tuple[dict[str, Any], ScoreResult]:
        result = self._score(form, answers, complete)
        clean = {k: v for k, v in answers.items() if v is not None}
        return {"answers": clean, "comments": comments, "score": result.as_dict(), "reason": reason}, result

    @staticmethod
    def _score_fields(result: ScoreResult) -> dict[str, Any]:
        return {"total": None if result.total is None else round(result.total, 2), "band": result.band, "critical_failed": result.critical_failed}

    def preview(self, form_id: str, answers: Mapping[str, Any]) -> dict[str, Any]:
        """The live score of unsaved answers (the evaluation screen), on the active form."""
        self.forms()
        active = self.registry.form(form_id)
        if active is None:
            raise NotFound(f"no form {form_id!r}")
        return self._score(active[0], answers, False).as_dict()

    # ------------------------------------------------------------ evaluations
    async def create(
        self, actor: Actor, recording_id: str, *, form_id: str | None, answers: Mapping[str, Any],
        comments: list[Mapping[str, Any]] | None = None, submit: bool = False, calibration_id: int | None = None,
        work_item_id: int | None = None,
    ) -> dict[str, Any]:
        if not actor.evaluates:
            raise Forbidden("evaluating calls requires the qa.evaluate permission")
        rec = await self.recordings.recording(recording_id)
        if rec is None or not actor.sees(rec.queue):  # out of scope: as if it did not exist
            raise NotFound(f"no recording {recording_id!r}")
        if not rec.agent_id:
            raise QaError(f"recording {recording_id!r} has no agent to evaluate", 422)
        form_hash = None
        if calibration_id is not None:
            cal = await self.repo.calibration(calibration_id)
            if cal is None:
                raise NotFound(f"no calibration session {calibration_id}")
            if recording_id not in cal["recording_ids"]:
                raise QaError(f"recording {recording_id!r} is not part of calibration session {calibration_id}", 422)
            if actor.subject not in cal["evaluators"] and actor.subject != cal["expert"]:
                raise Forbidden(f"{actor.subject} is not an evaluator of calibration session {calibration_id}")
            existing = await self.repo.evaluations(calibration_id=calibration_id, evaluator=actor.subject, recording_id=recording_id)
            if existing:
                raise Conflict(f"{actor.subject} already scored {recording_id!r} in this session (evaluation {existing[0]['id']})")
            form_id, form_hash = cal["form_id"], cal["form_hash"]
        if work_item_id is not None:
            item = await self.repo.work_item(work_item_id)
            if item is None or item["recording_id"] != recording_id:
                raise QaError(f"work item {work_item_id} is not for recording {recording_id!r}", 422)
            if item["evaluation_id"] is not None:
                raise Conflict(f"work item {work_item_id} already has evaluation {item['evaluation_id']}")
            form_id = form_id or item["form_id"]
        if not form_id:
            forms = sorted(self.forms().forms)
            if len(forms) != 1:
                raise QaError("name the form ('form_id')", 422)
            form_id = forms[0]
        form, form_hash = await self._form(form_id, form_hash)
        clean_comments = _clean_comments(form, comments, rec.duration)
        content, result = self._content(form, answers, clean_comments, submit)
        now = self.clock()
        fields = {
            "recording_id": rec.recording_id, "call_id": rec.call_id, "agent_id": rec.agent_id, "queue": rec.queue,
            "evaluator": actor.subject,
            "form_id": form.id, "form_hash": form_hash, "state": "submitted" if submit else "draft", "revision": 1,
            "calibration_id": calibration_id, "work_item_id": work_item_id, "created_at": now, "updated_at": now,
            **self._score_fields(result),
        }
        if submit:
            fields["submitted_at"] = now
            fields["respond_by"] = None if calibration_id else now + self.respond_window
        eid = await self.repo.create_evaluation(fields, content, actor.subject, "submitted" if submit else "created",
                                                {"total": fields["total"], "band": result.band})
        if submit:
            await self._audit(actor, "evaluation.submitted", eid, {"recording_id": rec.recording_id, "total": fields["total"]})
            await self._scored(eid)
        return await self.get(actor, eid)

    async def _load(self, evaluation_id: int) -> dict[str, Any]:
        ev = await self.repo.evaluation(evaluation_id)
        if ev is None:
            raise NotFound(f"no evaluation {evaluation_id}")
        return ev

    def _may_read(self, actor: Actor, ev: dict[str, Any]) -> bool:
        if actor.evaluates:
            return actor.sees(ev.get("queue")) or ev["agent_id"] == actor.agent_id
        return ev["agent_id"] == actor.agent_id and ev["state"] != "draft" and ev["calibration_id"] is None

    async def get(self, actor: Actor, evaluation_id: int) -> dict[str, Any]:
        ev = await self._load(evaluation_id)
        if not self._may_read(actor, ev):
            raise NotFound(f"no evaluation {evaluation_id}")
        return self._decorate(ev)

    def _decorate(self, ev: dict[str, Any]) -> dict[str, Any]:
        rb = ev.get("respond_by")
        ev["response_open"] = bool(ev["state"] == "submitted" and rb and self.clock() <= datetime.fromisoformat(rb))
        if "revisions" in ev and ev["revisions"]:
            cur = ev["revisions"][-1]
            ev.setdefault("answers", cur["answers"])
            ev.setdefault("comments", cur["comments"])
            ev.setdefault("score", cur["score"])
        return ev

    async def list(self, actor: Actor, **filters: Any) -> list[dict[str, Any]]:
        if not actor.evaluates:
            filters["agent_id"] = actor.agent_id
            rows = await self.repo.evaluations(**filters)
            return [self._decorate(r) for r in rows if r["state"] != "draft"]
        return [self._decorate(r) for r in await self.repo.evaluations(**filters) if self._may_read(actor, r)]

    async def update_draft(self, actor: Actor, evaluation_id: int, *, answers: Mapping[str, Any], comments: list[Mapping[str, Any]] | None, submit: bool) -> dict[str, Any]:
        ev = await self._load(evaluation_id)
        if ev["evaluator"] != actor.subject:
            raise Forbidden("only the evaluator edits a draft")
        if ev["state"] != "draft":
            raise Conflict("a submitted evaluation is immutable; create a new revision (POST .../revisions)")
        form, _ = await self._form(ev["form_id"], ev["form_hash"])
        rec = await self.recordings.recording(ev["recording_id"])
        content, result = self._content(form, answers, _clean_comments(form, comments, rec.duration if rec else None), submit)
        now = self.clock()
        fields: dict[str, Any] = {"updated_at": now, **self._score_fields(result)}
        if submit:
            fields.update(state="submitted", submitted_at=now, respond_by=None if ev["calibration_id"] else now + self.respond_window)
        content.pop("reason")
        ok = await self.repo.update_evaluation(evaluation_id, fields, actor=actor.subject, action="submitted" if submit else "saved",
                                               detail={"total": fields["total"]}, replace_revision=content, expect_state=["draft"])
        if not ok:
            raise Conflict("the evaluation is no longer a draft")
        if submit:
            await self._audit(actor, "evaluation.submitted", evaluation_id, {"recording_id": ev["recording_id"], "total": fields["total"]})
            await self._scored(evaluation_id)
        return await self.get(actor, evaluation_id)

    async def revise(self, actor: Actor, evaluation_id: int, *, answers: Mapping[str, Any], comments: list[Mapping[str, Any]] | None, reason: str) -> dict[str, Any]:
        """A new revision of a submitted evaluation (the evaluator, or a QA lead)."""
        ev = await self._load(evaluation_id)
        if not (actor.is_lead or (actor.evaluates and ev["evaluator"] == actor.subject)):
            raise Forbidden("only the evaluator or a QA lead revises an evaluation")
        if ev["state"] == "draft":
            raise Conflict("a draft is edited in place (PUT), not revised")
        if ev["state"] == "disputed":
            raise Conflict("the evaluation is disputed: a QA lead resolves it (POST .../resolve)")
        if not reason or not reason.strip():
            raise QaError("a revision needs a reason")
        return await self._new_revision(actor, ev, answers, comments, reason.strip(), {}, "revised", None)

    async def _new_revision(self, actor: Actor, ev: dict[str, Any], answers: Mapping[str, Any], comments: list[Mapping[str, Any]] | None,
                            reason: str, extra: dict[str, Any], action: str, expect: list[str] | None) -> dict[str, Any]:
        form, _ = await self._form(ev["form_id"], ev["form_hash"])
        rec = await self.recordings.recording(ev["recording_id"])
        content, result = self._content(form, answers, _clean_comments(form, comments, rec.duration if rec else None), True, reason)
        fields = {"updated_at": self.clock(), **self._score_fields(result), **extra}
        ok = await self.repo.update_evaluation(
            ev["id"], fields, actor=actor.subject, action=action, new_revision=content, expect_state=expect,
            detail={"reason": reason, "total_before": ev["total"], "total": fields["total"]},
        )
        if not ok:
            raise Conflict("the evaluation changed meanwhile; reload it")
        await self._audit(actor, f"evaluation.{action}", ev["id"], {"reason": reason, "total_before": ev["total"], "total": fields["total"]})
        await self._scored(ev["id"])
        return await self.get(actor, ev["id"])

    async def _agent_response(self, actor: Actor, evaluation_id: int) -> dict[str, Any]:
        ev = await self._load(evaluation_id)
        if ev["agent_id"] != actor.agent_id or ev["calibration_id"] is not None or ev["state"] == "draft":
            raise NotFound(f"no evaluation {evaluation_id}") if not actor.evaluates else Forbidden("only the evaluated agent responds")
        if ev["state"] != "submitted":
            raise Conflict(f"the evaluation is {ev['state']}; it can be acknowledged or disputed once")
        if ev["respond_by"] and self.clock() > datetime.fromisoformat(ev["respond_by"]):
            raise Conflict(f"the response window closed at {ev['respond_by']}")
        return ev

    async def acknowledge(self, actor: Actor, evaluation_id: int, comment: str | None = None) -> dict[str, Any]:
        await self._agent_response(actor, evaluation_id)
        now = self.clock()
        ok = await self.repo.update_evaluation(evaluation_id, {"state": "acknowledged", "acknowledged_at": now, "updated_at": now},
                                               actor=actor.subject, action="acknowledged", detail={"comment": comment}, expect_state=["submitted"])
        if not ok:
            raise Conflict("the evaluation changed meanwhile; reload it")
        await self._audit(actor, "evaluation.acknowledged", evaluation_id, {})
        return await self.get(actor, evaluation_id)

    async def dispute(self, actor: Actor, evaluation_id: int, comment: str) -> dict[str, Any]:
        if not comment or not comment.strip():
            raise QaError("a dispute needs a comment")
        await self._agent_response(actor, evaluation_id)
        now = self.clock()
        ok = await self.repo.update_evaluation(
            evaluation_id, {"state": "disputed", "disputed_at": now, "dispute_comment": comment.strip()[:MAX_COMMENT], "updated_at": now},
            actor=actor.subject, action="disputed", detail={"comment": comment.strip()[:MAX_COMMENT]}, expect_state=["submitted"],
        )
        if not ok:
            raise Conflict("the evaluation changed meanwhile; reload it")
        await self._audit(actor, "evaluation.disputed", evaluation_id, {})
        return await self.get(actor, evaluation_id)

    async def resolve(self, actor: Actor, evaluation_id: int, *, outcome: str, comment: str,
                      answers: Mapping[str, Any] | None = None, comments: list[Mapping[str, Any]] | None = None) -> dict[str, Any]:
        if not actor.is_lead:
            raise Forbidden("only a QA lead resolves a dispute")
        if outcome not in RESOLUTIONS:
            raise QaError(f"outcome must be one of {', '.join(RESOLUTIONS)}")
        if not comment or not comment.strip():
            raise QaError("a resolution needs a comment")
        ev = await self._load(evaluation_id)
        if ev["state"] != "disputed":
            raise Conflict(f"the evaluation is {ev['state']}, not disputed")
        now = self.clock()
        extra = {"state": "resolved", "resolved_at": now, "resolved_by": actor.subject, "resolution": outcome, "resolution_comment": comment.strip()}
        if outcome == "changed":
            if answers is None:
                raise QaError("outcome 'changed' needs the corrected answers")
            cur = ev["revisions"][-1]
            return await self._new_revision(actor, ev, answers, comments if comments is not None else cur["comments"],
                                            f"dispute resolved: {comment.strip()}", extra, "resolved", ["disputed"])
        if answers is not None:
            raise QaError("outcome 'upheld' keeps the answers; send none (or use 'changed')")
        ok = await self.repo.update_evaluation(evaluation_id, {**extra, "updated_at": now}, actor=actor.subject, action="resolved",
                                               detail={"outcome": outcome, "comment": comment.strip()}, expect_state=["disputed"])
        if not ok:
            raise Conflict("the evaluation changed meanwhile; reload it")
        await self._audit(actor, "evaluation.resolved", evaluation_id, {"outcome": outcome})
        return await self.get(actor, evaluation_id)

    # ------------------------------------------------------------ work list
    async def build_work_list(self, day: date, actor: Actor | None = None, *, once: bool = False, assign_on: date | None = None) -> dict[str, Any]:
        """Run the sampling rules for the period containing ``day``; new picks are assigned for ``day``.

        ``once`` (the scheduler, qa/scheduler.py): the build is recorded as run ``worklist:<period>``
        in the same transaction as its items; if that run exists already nothing is added and the
        result says ``"already_built": True``."""
        rules = self.forms().rules
        if rules is None:
            raise QaError("no sampling rules (qa-forms/sampling.yaml)", 409)
        key = period_key(rules.period, day)
        start, end = day_bounds(*period_bounds(rules.period, day))
        candidates = await self.recordings.candidates(start, end)
        existing = await self.repo.work_item_recordings()
        picks = draw(rules, candidates, key, exclude=existing)
        on = (assign_on or day).isoformat()  # the day the daily caps count against
        unassigned = assign(picks, rules.evaluators, load=await self.repo.assigned_on(on))
        ids = await self.repo.add_work_items(picks, key, on, run_key=f"worklist:{key}" if once else None)
        if ids is None:
            return {"period": key, "candidates": len(candidates), "picked": 0, "unassigned": 0, "items": [], "already_built": True}
        await self._audit(actor or Actor("scheduler", "system"), "worklist.built", key, {"picked": len(picks), "unassigned": len(unassigned)})
        return {
            "period": key, "candidates": len(candidates), "picked": len(picks), "unassigned": len(unassigned),
            "items": [{**p.as_dict(), "id": i} for p, i in zip(picks, ids)],
        }

    # ------------------------------------------------------------ calibration
    async def create_calibration(self, actor: Actor, *, name: str, form_id: str, recording_ids: list[str],
                                 evaluators: list[str], expert: str | None) -> dict[str, Any]:
        if not actor.is_lead:
            raise Forbidden("only a QA lead creates calibration sessions")
        if not recording_ids or len(set(recording_ids)) != len(recording_ids):
            raise QaError("recording_ids must be a non-empty list without repeats")
        if len(set(evaluators)) < 2:
            raise QaError("a calibration needs at least two evaluators")
        for rid in recording_ids:
            if await self.recordings.recording(rid) is None:
                raise NotFound(f"no recording {rid!r}")
        _, form_hash = await self._form(form_id)
        cid = await self.repo.create_calibration({
            "name": name, "form_id": form_id, "form_hash": form_hash, "recording_ids": recording_ids,
            "evaluators": sorted(set(evaluators)), "expert": expert, "created_by": actor.subject, "created_at": self.clock(),
        })
        await self._audit(actor, "calibration.created", cid, {"recordings": len(recording_ids), "evaluators": sorted(set(evaluators))})
        return await self.repo.calibration(cid)  # type: ignore[return-value]

    async def calibration_report(self, actor: Actor, calibration_id: int) -> dict[str, Any]:
        if not actor.evaluates:
            raise Forbidden("calibration reports are for QA staff")
        cal = await self.repo.calibration(calibration_id)
        if cal is None:
            raise NotFound(f"no calibration session {calibration_id}")
        form, _ = await self._form(cal["form_id"], cal["form_hash"])
        sheets = []
        for ev in await self.repo.evaluations(calibration_id=calibration_id, state="submitted"):
            sheets.append(calib.Sheet(ev["evaluator"], ev["recording_id"], ev["answers"], score(form, ev["answers"])))
        rep = calib.report(form, sheets, cal["expert"])
        return {"session": cal, **rep}

    async def calibration_trend(self, actor: Actor) -> dict[str, list[dict[str, Any]]]:
        """Each evaluator's calibration score per session, oldest first."""
        out: dict[str, list[dict[str, Any]]] = {}
        for cal in await self.repo.calibrations():
            rep = await self.calibration_report(actor, cal["id"])
            for ev, sc in rep["calibration_scores"].items():
                out.setdefault(ev, []).append({"session": cal["id"], "name": cal["name"], "at": cal["created_at"], "score": sc})
        return out

    async def work_list(self, actor: Actor, *, evaluator: str | None = None, open_only: bool = True) -> list[dict[str, Any]]:
        if not actor.evaluates:
            raise Forbidden("the work list is for QA staff")
        items = await self.repo.work_items(evaluator=evaluator, open_only=open_only)
        return [i for i in items if actor.sees(i.get("queue"))]



def build_qa_service(settings: Any, sessionmaker: Any, audit: Any = None, *, recordings: bool = True) -> QaService:
    """The composition root's factory (callcore/wiring.py); ``recordings``: the recording
    package runs (evaluations reference its recordings), else calls stand in for them."""
    from qa.repository import CallRecordings, RecordingTable

    repo = QaRepository(sessionmaker)
    registry = FormRegistry(settings.qa_forms_dir, repo, watch=settings.qa_forms_watch)
    source = (RecordingTable if recordings else CallRecordings)(sessionmaker, csat_question=settings.qa_csat_question)
    return QaService(
        registry, repo, source,
        respond_days=settings.qa_respond_days, leads=settings.qa_leads, audit=audit,
    )
