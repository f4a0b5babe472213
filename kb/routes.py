"""Knowledge-base REST edge (``/api/kb``). Handlers stay thin: parse → service → serialize.

The service is ``request.app.state.kb`` (:class:`kb.service.KbService`); the caller comes
from :mod:`api.auth` and becomes a :class:`kb.permissions.Actor`. Service errors become
clear 4xx answers (403, 404, 409, 422) through :class:`KbRoute`, never a 500.
"""

from __future__ import annotations

from typing import Any, Callable, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from api.auth import Principal, require
from kb.permissions import Actor, actor_for
from kb.rules import CallContext
from kb.service import MAX_ATTACHMENT, KbError, KbService, NotFound


class KbRoute(APIRoute):
    def get_route_handler(self) -> Callable[..., Any]:
        handler = super().get_route_handler()

        async def wrapped(request: Request) -> Response:
            try:
                return await handler(request)
            except KbError as exc:
                return JSONResponse({"detail": exc.message}, status_code=exc.status)

        return wrapped


router = APIRouter(prefix="/api/kb", tags=["knowledge base"], route_class=KbRoute)


def svc(request: Request) -> KbService:
    kb = getattr(request.app.state, "kb", None)
    if kb is None:
        raise NotFound("the knowledge base is not running in this process")
    return kb


def actor(permission: str) -> Any:
    """Dependency: the caller as an :class:`Actor`, who must hold ``permission`` (declared
    through ``api.auth.require``, so the role × route test sees it)."""
    needed = require(permission)

    def dep(p: Principal = Depends(needed)) -> Actor:
        return actor_for(p)

    dep.__name__ = f"kb_actor_{permission.replace('.', '_')}"
    return dep


READ, WRITE, PUBLISH = actor("kb.read"), actor("kb.write"), actor("kb.publish")


# ------------------------------------------------------------------ bodies
class Step(BaseModel):
    id: str | None = None
    title: str
    text: str = ""


class ArticleBody(BaseModel):
    model_config = {"extra": "forbid"}

    slug: str | None = None
    title: str | None = None
    body: str | None = None
    kind: Literal["article", "script"] | None = None
    steps: list[Step] | None = None
    status: Literal["draft", "review", "published", "archived"] | None = None
    language: Literal["ko", "en"] | None = None
    owner: str | None = None
    tags: list[str] | None = None
    products: list[str] | None = None
    queues: list[str] | None = None
    intents: list[str] | None = None
    notice: bool | None = None
    valid_from: str | None = None
    valid_until: str | None = None
    comment: str | None = Field(None, max_length=500)

    def data(self) -> dict[str, Any]:
        d = self.model_dump(exclude_unset=True)
        if "steps" in d and d["steps"] is not None:
            d["steps"] = [{k: v for k, v in s.items() if v is not None} for s in d["steps"]]
        return d


class StatusBody(BaseModel):
    status: Literal["draft", "review", "published", "archived"]


class RollbackBody(BaseModel):
    version: int = Field(ge=1)


class FeedbackBody(BaseModel):
    article_id: int
    kind: Literal["used", "helpful"] = "helpful"
    suggested: bool | None = None  # default: read from the call's pop


class TickBody(BaseModel):
    article_id: int
    step: str = Field(min_length=1, max_length=64)
    done: bool = True


class SynonymBody(BaseModel):
    terms: list[str] = Field(min_length=2, max_length=50)


# ------------------------------------------------------------------ search + articles
@router.get("/search")
async def search(
    request: Request,
    q: str = Query("", max_length=500),
    queue: str | None = None,
    tag: str | None = None,
    status: Literal["draft", "review", "published", "archived"] = "published",
    language: Literal["ko", "en"] | None = None,
    kind: Literal["article", "script"] | None = None,
    limit: int = Query(10, ge=1, le=100),
    offset: int = Query(0, ge=0),
    a: Actor = Depends(READ),
) -> dict[str, Any]:
    return await svc(request).search(q, a, queue=queue, tag=tag, status=status, language=language, kind=kind,
                                     limit=limit, offset=offset)


@router.post("/articles", status_code=201)
async def create_article(body: ArticleBody, request: Request, a: Actor = Depends(WRITE)) -> dict[str, Any]:
    return await svc(request).create(body.data(), a)


@router.get("/articles/{article_id}")
async def get_article(article_id: int, request: Request, a: Actor = Depends(READ)) -> dict[str, Any]:
    return await svc(request).article(article_id, a)


@router.patch("/articles/{article_id}")
async def update_article(article_id: int, body: ArticleBody, request: Request, a: Actor = Depends(WRITE)) -> dict[str, Any]:
    data = body.data()
    comment = data.pop("comment", None)
    return await svc(request).update(article_id, data, a, comment=comment)


@router.post("/articles/{article_id}/status")
async def set_status(article_id: int, body: StatusBody, request: Request, a: Actor = Depends(WRITE)) -> dict[str, Any]:
    return await svc(request).set_status(article_id, body.status, a)


@router.get("/articles/{article_id}/versions")
async def versions(article_id: int, request: Request, a: Actor = Depends(WRITE)) -> list[dict[str, Any]]:
    return await svc(request).versions(article_id, a)


@router.get("/articles/{article_id}/diff")
async def diff(article_id: int, request: Request, from_: int = Query(..., alias="from", ge=1),
               to: int = Query(..., ge=1), a: Actor = Depends(WRITE)) -> dict[str, Any]:
    return await svc(request).diff(article_id, from_, to, a)


@router.post("/articles/{article_id}/rollback")
async def rollback(article_id: int, body: RollbackBody, request: Request, a: Actor = Depends(WRITE)) -> dict[str, Any]:
    return await svc(request).rollback(article_id, body.version, a)


@router.post("/articles/{article_id}/proposals", status_code=201)
async def propose(article_id: int, body: ArticleBody, request: Request, a: Actor = Depends(WRITE)) -> dict[str, Any]:
    """Propose a change to a published article (any agent); a reviewer accepts or rejects it."""
    data = body.data()
    comment = data.pop("comment", None)
    return await svc(request).propose(article_id, data, a, comment=comment)


@router.get("/proposals")
async def proposals(request: Request, article_id: int | None = None,
                    status: Literal["open", "accepted", "rejected"] | None = "open", a: Actor = Depends(WRITE)) -> list[dict[str, Any]]:
    return await svc(request).proposals(a, article_id=article_id, status=status)


class DecisionBody(BaseModel):
    accept: bool


@router.post("/proposals/{proposal_id}/decision")
async def decide(proposal_id: int, body: DecisionBody, request: Request, a: Actor = Depends(PUBLISH)) -> dict[str, Any]:
    return await svc(request).decide(proposal_id, body.accept, a)


@router.post("/articles/{article_id}/attachments", status_code=201)
async def add_attachment(article_id: int, request: Request, filename: str = Query(..., min_length=1, max_length=255),
                         a: Actor = Depends(WRITE)) -> Any:
    """The request body is the file itself (``Content-Type`` = its type), ``?filename=`` its name."""
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > MAX_ATTACHMENT:
        return JSONResponse({"detail": f"an attachment is at most {MAX_ATTACHMENT // (1024 * 1024)} MB"}, status_code=413)
    data = bytearray()
    async for chunk in request.stream():
        data.extend(chunk)
        if len(data) > MAX_ATTACHMENT:
            return JSONResponse({"detail": f"an attachment is at most {MAX_ATTACHMENT // (1024 * 1024)} MB"}, status_code=413)
    return await svc(request).add_attachment(article_id, filename, request.headers.get("content-type"), bytes(data), a)


@router.get("/attachments/{attachment_id}")
async def get_attachment(attachment_id: int, request: Request, a: Actor = Depends(READ)) -> Response:
    meta, data = await svc(request).attachment(attachment_id, a)
    return Response(data, media_type=meta["content_type"], headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(meta['filename'])}",
        "X-Content-Type-Options": "nosniff",
    })


# ------------------------------------------------------------------ on a call
@router.get("/calls/{call_id}/suggestions")
async def call_suggestions(call_id: str, request: Request, a: Actor = Depends(READ)) -> dict[str, Any]:
    """The suggestions for a live (or just-ended) call, from its screen pop."""
    return await svc(request).call_suggestions(call_id, a)


class SuggestBody(BaseModel):
    intent: str | None = Field(None, max_length=200)
    path: list[str] = Field(default_factory=list, max_length=200)
    queue: str | None = Field(None, max_length=80)
    tier: str | None = Field(None, max_length=40)
    dispositions: list[str] = Field(default_factory=list, max_length=50)
    language: Literal["ko", "en"] = "ko"


@router.post("/suggest")
async def suggest(body: SuggestBody, request: Request, a: Actor = Depends(READ)) -> list[dict[str, Any]]:
    """Suggestions for a described call (what the pop would carry), e.g. to preview the rules."""
    context = CallContext(intent=body.intent, path=tuple(body.path), queue=body.queue, tier=body.tier,
                          dispositions=tuple(body.dispositions), language=body.language)
    return await svc(request).suggest(context)


@router.get("/calls/{call_id}")
async def call_record(call_id: str, request: Request, a: Actor = Depends(READ)) -> dict[str, Any]:
    return await svc(request).call_record(call_id, a)


@router.post("/calls/{call_id}/feedback")
async def feedback(call_id: str, body: FeedbackBody, request: Request, a: Actor = Depends(WRITE)) -> dict[str, Any]:
    return await svc(request).mark(call_id, body.article_id, body.kind, a, suggested=body.suggested)


@router.post("/calls/{call_id}/ticks")
async def tick(call_id: str, body: TickBody, request: Request, a: Actor = Depends(WRITE)) -> dict[str, Any]:
    return await svc(request).tick(call_id, body.article_id, body.step, a, done=body.done)


# ------------------------------------------------------------------ notices
@router.get("/notices")
async def notices(request: Request, days: int = Query(30, ge=1, le=3650), a: Actor = Depends(READ)) -> list[dict[str, Any]]:
    return await svc(request).notice_board(a, days=days)


@router.post("/notices/{notice_id}/ack")
async def acknowledge(notice_id: int, request: Request, a: Actor = Depends(READ)) -> dict[str, Any]:
    return await svc(request).acknowledge(notice_id, a)


# ------------------------------------------------------------------ synonyms
@router.get("/synonyms")
async def list_synonyms(request: Request, a: Actor = Depends(READ)) -> list[dict[str, Any]]:
    return await svc(request).list_synonyms(a)


@router.post("/synonyms", status_code=201)
async def add_synonyms(body: SynonymBody, request: Request, a: Actor = Depends(PUBLISH)) -> dict[str, Any]:
    return await svc(request).save_synonyms(body.terms, a)


@router.put("/synonyms/{group_id}")
async def put_synonyms(group_id: int, body: SynonymBody, request: Request, a: Actor = Depends(PUBLISH)) -> dict[str, Any]:
    return await svc(request).save_synonyms(body.terms, a, group_id=group_id)


@router.delete("/synonyms/{group_id}", status_code=204)
async def delete_synonyms(group_id: int, request: Request, a: Actor = Depends(PUBLISH)) -> Response:
    await svc(request).delete_synonyms(group_id, a)
    return Response(status_code=204)


# ------------------------------------------------------------------ rules
@router.get("/rules")
async def rules(request: Request, a: Actor = Depends(READ)) -> dict[str, Any]:
    """The suggestion rules in use, and the problems of the last load."""
    kb = svc(request)
    return kb.rules_summary() | {"problems": kb.rules_problems}


@router.post("/rules/reload")
async def reload_rules(request: Request, a: Actor = Depends(PUBLISH)) -> Any:
    """Re-read dialplans/kb/rules.yaml (reviewers); 422 with the problems if it has errors."""
    result = svc(request).reload_rules()
    return result if result["reloaded"] else JSONResponse(result, status_code=422)


# ------------------------------------------------------------------ reports
@router.get("/reports/gaps")
async def gaps(request: Request, days: int | None = Query(None, ge=1, le=3650), a: Actor = Depends(PUBLISH)) -> dict[str, Any]:
    return await svc(request).gaps_report(a, days=days)


@router.get("/reports/usage")
async def usage(request: Request, a: Actor = Depends(PUBLISH)) -> list[dict[str, Any]]:
    return await svc(request).usage_report(a)


@router.get("/reports/expiring")
async def expiring(request: Request, days: int = Query(14, ge=0, le=3650), a: Actor = Depends(WRITE)) -> list[dict[str, Any]]:
    return await svc(request).expiring(a, within_days=days)
