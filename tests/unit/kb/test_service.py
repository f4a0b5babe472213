"""Articles: versions, diff, rollback, the review flow and its permissions, Markdown import/export,
attachments, feedback, script ticks, notices, reports."""

import pytest

from kb.permissions import SYSTEM
from kb.service import Conflict, Forbidden, Invalid, NotFound, parse_markdown, to_markdown
from tests.unit.kb.conftest import AGENT, OTHER_AGENT, REVIEWER, SAMPLE

pytestmark = pytest.mark.db


async def test_every_edit_is_a_version_with_diff_and_rollback(kb):
    a = await kb.create({"slug": "roaming", "title": "로밍 안내", "body": "하루 1만 원", "tags": ["로밍"]}, AGENT)
    assert a["status"] == "draft" and a["version"] == 1 and a["owner"] == "1001"
    a = await kb.update(a["id"], {"body": "하루 1만 1천 원"}, AGENT, comment="요금 인상")
    a = await kb.update(a["id"], {"title": "해외 로밍 안내"}, AGENT)
    assert a["version"] == 3
    same = await kb.update(a["id"], {"title": "해외 로밍 안내"}, AGENT)
    assert same["version"] == 3  # no change, no version
    versions = await kb.versions(a["id"], AGENT)
    assert [(v["version"], v["comment"]) for v in versions] == [(1, "created"), (2, "요금 인상"), (3, "edited")]
    d = await kb.diff(a["id"], 1, 3, AGENT)
    assert d["changed"] == ["body", "title"]
    assert "-하루 1만 원" in d["diff"] and "+하루 1만 1천 원" in d["diff"] and "+title: 해외 로밍 안내" in d["diff"]
    back = await kb.rollback(a["id"], 1, AGENT)
    assert back["version"] == 4 and back["title"] == "로밍 안내" and back["body"] == "하루 1만 원"
    assert (await kb.versions(a["id"], AGENT))[-1]["comment"] == "rollback to v1"
    with pytest.raises(NotFound):
        await kb.diff(a["id"], 1, 9, AGENT)


async def test_agents_propose_reviewers_publish(kb):
    a = await kb.create({"slug": "refund-faq", "title": "환불 FAQ", "body": "환불은 3일"}, AGENT)
    with pytest.raises(Forbidden):
        await kb.create({"slug": "x-pub", "title": "t", "status": "published"}, AGENT)
    with pytest.raises(Forbidden):
        await kb.update(a["id"], {"body": "남의 초안"}, OTHER_AGENT)
    assert (await kb.set_status(a["id"], "review", AGENT))["status"] == "review"
    with pytest.raises(Forbidden):
        await kb.set_status(a["id"], "published", AGENT)
    pub = await kb.set_status(a["id"], "published", REVIEWER)
    assert pub["status"] == "published" and pub["reviewed_by"] == "sup1"
    with pytest.raises(Forbidden):  # published: only reviewers edit
        await kb.update(a["id"], {"body": "바꿔요"}, AGENT)
    await kb.update(a["id"], {"body": "환불은 2일"}, REVIEWER)
    # notice board: new, then changed; agents acknowledge, the reviewer sees who did
    board = await kb.notice_board(AGENT)
    assert [(n["change"], n["version"]) for n in board] == [("changed", 2), ("new", 1)]
    assert all(n["acknowledged_at"] is None for n in board)
    ack = await kb.acknowledge(board[0]["id"], AGENT)
    assert (await kb.acknowledge(board[0]["id"], AGENT))["acknowledged_at"] == ack["acknowledged_at"]  # once
    assert (await kb.notice_board(AGENT))[0]["acknowledged_at"] is not None
    assert (await kb.notice_board(REVIEWER))[0]["acknowledged_by"] == ["1001"]
    assert "acknowledged_by" not in (await kb.notice_board(AGENT))[0]
    with pytest.raises(NotFound):
        await kb.acknowledge(999, AGENT)
    assert (await kb.set_status(a["id"], "archived", REVIEWER))["status"] == "archived"


async def test_bad_input_is_refused_with_a_clear_message(kb):
    for data, msg in [
        ({"slug": "Bad Slug", "title": "t"}, "slug"),
        ({"slug": "ok", "title": ""}, "title"),
        ({"slug": "ok", "title": "t", "language": "fr"}, "language"),
        ({"slug": "ok", "title": "t", "kind": "script"}, "steps"),
        ({"slug": "ok", "title": "t", "valid_until": "tomorrow"}, "valid_until"),
        ({"slug": "ok", "title": "t", "valid_from": "2027-01-02", "valid_until": "2027-01-01"}, "after"),
        ({"slug": "ok", "title": "t", "colour": "red"}, "unknown field"),
    ]:
        with pytest.raises(Invalid, match=msg):
            await kb.create(data, AGENT)
    await kb.create({"slug": "ok", "title": "t"}, AGENT)
    with pytest.raises(Conflict):
        await kb.create({"slug": "ok", "title": "t2"}, AGENT)


async def test_markdown_import_export_round_trip(kb, tmp_path):
    report = await kb.import_dir(SAMPLE, SYSTEM)
    assert len(report.created) == 14 and report.errors == []
    again = await kb.import_dir(SAMPLE, SYSTEM)
    assert again.created == [] and again.updated == [] and len(again.unchanged) == 14
    written = await kb.export_dir(tmp_path / "out", SYSTEM)
    assert "refund-procedure.md" in written and "synonyms.yaml" in written
    text = (tmp_path / "out" / "refund-call-script.md").read_text(encoding="utf-8")
    slug, status, content = parse_markdown(text, "refund-call-script.md")
    assert slug == "refund-call-script" and status == "published" and content["kind"] == "script"
    assert [s["id"] for s in content["steps"]] == ["greeting", "verification", "resolution", "closing"]
    # an edited file updates (new version), a broken one is reported and the rest still imports
    (tmp_path / "out" / "refund-procedure.md").write_text(text.replace("인사", "첫 인사").replace("refund-call-script", "refund-procedure"), encoding="utf-8")
    (tmp_path / "out" / "broken.md").write_text("---\ntitle: [unclosed\n---\nbody", encoding="utf-8")
    r = await kb.import_dir(tmp_path / "out", SYSTEM)
    assert r.updated == ["refund-procedure"] and len(r.errors) == 1 and r.errors[0].startswith("broken.md")
    assert to_markdown("x", "draft", content).startswith("---\nslug: x\n")


async def test_attachments_go_through_the_store(kb):
    a = await kb.create({"slug": "guide", "title": "가이드"}, AGENT)
    pdf = b"%PDF-1.4 test"
    att = await kb.add_attachment(a["id"], "../../etc/안내서.pdf", None, pdf, AGENT)
    assert att["filename"] == "안내서.pdf" and att["content_type"] == "application/pdf" and att["size"] == len(pdf)
    meta, data = await kb.attachment(att["id"], AGENT)
    assert data == pdf and kb.store.objects[f"kb/{a['id']}/{att['sha256']}"] == pdf
    assert (await kb.article(a["id"], AGENT))["attachments"][0]["id"] == att["id"]
    with pytest.raises(Invalid, match="not accepted"):
        await kb.add_attachment(a["id"], "run.exe", "application/x-msdownload", b"MZ", AGENT)
    with pytest.raises(Invalid, match="empty"):
        await kb.add_attachment(a["id"], "a.pdf", None, b"", AGENT)


async def test_marks_ticks_and_the_gaps_report(sample_kb, db_sessionmaker):
    kb = sample_kb
    refund = await kb.repository.by_slug("refund-procedure")
    script = await kb.repository.by_slug("refund-call-script")
    r = await kb.mark("call-1", refund.id, "helpful", AGENT, suggested=True)
    assert r["recorded"] == ["used", "helpful"] and r["helpful_count"] == 1 and r["used_count"] == 1
    r = await kb.mark("call-1", refund.id, "helpful", AGENT)
    assert r["recorded"] == [] and r["helpful_count"] == 1  # once per call
    with pytest.raises(Invalid):
        await kb.mark("call-1", refund.id, "loved", AGENT)
    rec = await kb.tick("call-1", script.id, "greeting", AGENT)
    rec = await kb.tick("call-1", script.id, "verification", AGENT)
    assert [t["step"] for t in rec["script_ticks"]] == ["greeting", "verification"]
    rec = await kb.tick("call-1", script.id, "verification", AGENT, done=False)
    assert [t["step"] for t in rec["script_ticks"]] == ["greeting"]
    with pytest.raises(Invalid, match="no step"):
        await kb.tick("call-1", script.id, "dance", AGENT)
    with pytest.raises(Invalid, match="not a call script"):
        await kb.tick("call-1", refund.id, "greeting", AGENT)
    assert {(a["article_id"], a["kind"]) for a in rec["articles"]} == {(refund.id, "used"), (refund.id, "helpful")}

    # gaps: calls with a disposition and no helpful article
    from datetime import datetime, timezone

    from cti.models import CallRow

    async with db_sessionmaker() as s:
        for cid, disp in [("call-1", "refund"), ("call-2", "refund"), ("call-3", "address"), ("call-4", None)]:
            s.add(CallRow(id=cid, direction="in", started_at=datetime(2026, 12, 22, tzinfo=timezone.utc), disposition=disp,
                          queue="billing", ivr_context={"agent": {"intent": "refund"}}))
        await s.commit()
    gaps = await kb.gaps_report(REVIEWER)
    assert gaps["calls_with_disposition"] == 3 and gaps["without_helpful_article"] == 2
    assert {c["call_id"] for c in gaps["calls"]} == {"call-2", "call-3"}
    assert gaps["by_disposition"] == {"address": 1, "refund": 1} and gaps["calls"][0]["intent"] == "refund"
    with pytest.raises(Forbidden):
        await kb.gaps_report(AGENT)
    usage = await kb.usage_report(REVIEWER)
    assert usage[0]["slug"] == "refund-procedure" and usage[0]["helpful_count"] == 1


async def test_expiry_reminders(sample_kb, clock):
    kb = sample_kb
    soon = await kb.expiring(AGENT, within_days=200)
    assert [(a["slug"], a["owner"], a["expired"]) for a in soon] == [("notice-refund-policy-2027", "1002", False)]
    clock.t += 200 * 86400  # past 2027-06-30
    assert (await kb.expiring(AGENT, within_days=0))[0]["expired"] is True
    # past its validity it is no longer found nor suggested
    assert "notice-refund-policy-2027" not in [r["slug"] for r in (await kb.search("환불", AGENT))["results"]]


async def test_suggestions_for_a_refund_call_put_the_refund_article_first_and_say_why(sample_kb):
    from kb.rules import CallContext

    path = ("main:welcome", "main:main_menu", "main:billing_menu", "main:set_refund", "main:billing_queue")  # as the IVR records it
    ctx = CallContext(intent="refund", path=path, queue="billing", tier="standard")
    sugg = await sample_kb.suggest(ctx, limit=4)
    assert [s["slug"] for s in sugg] == ["refund-procedure", "notice-refund-policy-2027", "payment-cancel", "refund-call-script"]
    assert len(await sample_kb.suggest(ctx)) == 3  # the rules' limit
    assert sugg[0]["because"]["en"] == "suggested because: IVR intent = refund; IVR path = billing_menu; queue = billing"
    assert sugg[0]["because"]["ko"] == "추천 이유: IVR 의도 = refund; IVR 경로 = billing_menu; 대기열 = billing"
    assert sugg[3]["kind"] == "script" and [s["id"] for s in sugg[3]["steps"]][0] == "greeting"
    # a VIP tier brings the VIP guide in; an English caller gets the English article before the Korean one
    vip = await sample_kb.suggest(CallContext(queue="billing", tier="vip"))
    assert vip[0]["slug"] == "vip-care" and vip[0]["because"]["en"] == "suggested because: customer tier = vip"
    en = await sample_kb.suggest(CallContext(intent="refund", language="en"), limit=2)
    assert en[0]["slug"] == "refund-procedure-en"
    # a caller whose recent call was closed as "refund-request" (a tag of the refund articles)
    disp = await sample_kb.suggest(CallContext(queue="support", dispositions=("refund-request",)))
    assert disp[0]["slug"] == "refund-procedure" and disp[0]["reasons"][0]["rule"] == "recent-disposition"
    # nothing known about the call: only recent notices
    assert [s["slug"] for s in await sample_kb.suggest(CallContext())] == ["notice-refund-policy-2027"]


async def test_a_busy_queue_suggests_exactly_what_ranking_every_linked_article_gives(sample_kb):
    """The pop reads the articles linked only by queue/tier/disposition capped per combination
    (most helpful first): the suggestions equal those of ranking every linked article."""
    import random

    from sqlalchemy import insert

    from kb.models import ArticleRow
    from kb.rules import CallContext, Candidate, score

    rng = random.Random(5)
    rows = [{"slug": f"bulk-{i}", "title": f"bulk {i}", "body": "", "status": "published", "kind": "article", "steps": [],
             "products": [], "intents": rng.choice([[], [], [], ["refund"], ["billing", "refund"]]),
             "queues": rng.choice([["billing"], ["billing", "support"], ["support"], []]),
             "tags": rng.sample(["tier:vip", "refund-request", "complaint", "x"], rng.randint(0, 2)),
             "language": rng.choice(["ko", "ko", "en"]), "helpful_count": rng.choice([0, 0, 1, 2, 3, 7, 20]),
             "search_title": "", "search_body": ""} for i in range(300)]
    async with sample_kb.repository.session() as s:
        await s.execute(insert(ArticleRow), rows)
        await s.commit()
    repo, rules = sample_kb.repository, sample_kb.rules
    from datetime import timedelta

    from kb.service import _aware

    since = sample_kb.now() - timedelta(days=rules.notice_days)
    for ctx in (CallContext(queue="billing", tier="vip"), CallContext(queue="support", dispositions=("refund-request", "complaint")),
                CallContext(intent="refund", queue="billing", tier="vip", language="en"), CallContext(queue="billing")):
        for limit in (1, 3, 8):
            everything = await repo.linked(intents=["refund"] if ctx.intent else [], queues=[ctx.queue],
                                           tags=list(ctx.dispositions) + ([f"tier:{ctx.tier}"] if ctx.tier else []),
                                           notices_since=since, now=sample_kb.now())
            cands = [Candidate(r.id, r.slug, r.language, tuple(r.intents), tuple(r.queues), tuple(r.tags), r.helpful_count,
                               bool(r.notice and r.published_at and _aware(r.published_at) >= since)) for r in everything]
            expected = [(x.candidate.slug, x.score) for x in score(rules, ctx, cands)[:limit]]
            got = [(x["slug"], x["score"]) for x in await sample_kb.suggest(ctx, limit=limit)]
            assert len(everything) > 100 and len(got) == limit
            assert got == expected, (ctx, limit)


async def test_enrich_pop_reads_the_screen_pop(sample_kb):
    pop = {"queue": "billing", "ivr": {"path": ["billing_menu"], "agent": {"intent": "refund"}, "language": "ko"}}
    out = await sample_kb.enrich_pop(pop)
    assert out["context"]["intent"] == "refund" and out["suggestions"][0]["slug"] == "refund-procedure"


async def test_notices_and_expiry_reminders_go_out_on_the_bus(kb, clock):
    import asyncio

    import yaml

    from callcore.bus import Bus
    from kb.notifier import EVENTS_FILE, KbNotifier

    bus = Bus()
    kb.notifier = KbNotifier(bus, agents=lambda: ["1001", "1002"])
    desk_1001, sup = bus.subscribe({"agent:1001"}), bus.subscribe({"supervisor"})
    a = await kb.create({"slug": "n1", "title": "새 공지", "notice": True, "status": "published", "owner": "1002",
                         "valid_until": "2026-12-25"}, REVIEWER)
    msg = desk_1001.queue.get_nowait()
    assert msg.name == "kb.notice" and msg.payload["article_id"] == a["id"] and msg.payload["change"] == "new"
    assert sup.queue.get_nowait().name == "kb.notice"
    # expiry: once a day per article, to the owner and supervisors
    owner = bus.subscribe({"agent:1002"})
    assert await kb.remind() == 1 and await kb.remind() == 0
    m = owner.queue.get_nowait()
    assert m.name == "kb.expiring" and m.payload["slug"] == "n1" and m.payload["expired"] is False
    assert desk_1001.queue.empty()
    clock.t += 86400
    assert await kb.remind() == 1
    # every emitted event and payload key is documented
    doc = yaml.safe_load(EVENTS_FILE.read_text(encoding="utf-8"))
    assert set(msg.payload) == set(doc["kb.notice"]["payload"]) and set(m.payload) == set(doc["kb.expiring"]["payload"])
    # the reminder task is owned: started by start(), cancelled by stop()
    kb.reminder_interval = 0.01
    await kb.start()
    task = kb._reminder_task
    assert task is not None and not task.done()
    await kb.stop()
    assert task.cancelled() or task.done()
    await asyncio.sleep(0)


async def test_agents_propose_changes_to_published_articles_and_reviewers_decide(sample_kb):
    kb = sample_kb
    art = await kb.repository.by_slug("refund-procedure")
    before = art.body
    p = await kb.propose(art.id, {"body": before.replace("3~5일", "2~3일")}, AGENT, comment="2027 기준")
    assert p["status"] == "open" and p["changed"] == ["body"] and "+5. **처리 기간 안내**: 카드사 사정에 따라 영업일 기준 2~3일" in p["diff"]
    assert (await kb.repository.by_slug("refund-procedure")).body == before  # live content unchanged
    with pytest.raises(Invalid, match="changes nothing"):
        await kb.propose(art.id, {"body": before}, AGENT)
    with pytest.raises(Forbidden):
        await kb.decide(p["id"], True, AGENT)
    assert [x["id"] for x in await kb.proposals(AGENT)] == [p["id"]]
    done = await kb.decide(p["id"], True, REVIEWER)
    assert done["status"] == "accepted" and done["decided_by"] == "sup1" and done["article"]["version"] == 2
    assert "2~3일" in (await kb.repository.by_slug("refund-procedure")).body
    assert (await kb.versions(art.id, AGENT))[-1]["comment"] == "proposal #1 by 1001: 2027 기준"
    with pytest.raises(Conflict):
        await kb.decide(p["id"], False, REVIEWER)
    r = await kb.propose(art.id, {"title": "환불 절차 (개정)"}, OTHER_AGENT)
    assert (await kb.decide(r["id"], False, REVIEWER))["status"] == "rejected"
    assert (await kb.repository.by_slug("refund-procedure")).title == "카드 결제 환불 절차"
    assert await kb.proposals(AGENT) == [] and len(await kb.proposals(AGENT, status=None)) == 2


async def test_suggested_is_read_from_the_calls_pop(sample_kb):
    kb = sample_kb
    refund = await kb.repository.by_slug("refund-procedure")
    other = await kb.repository.by_slug("address-change")
    kb.pops = {"c-9": {"kb": {"suggestions": [{"id": refund.id}]}}}.get
    await kb.mark("c-9", refund.id, "used", AGENT)
    await kb.mark("c-9", other.id, "used", AGENT, suggested=True)  # the desk's claim loses to the pop
    rec = await kb.call_record("c-9", AGENT)
    assert {(a["article_id"], a["suggested"]) for a in rec["articles"]} == {(refund.id, True), (other.id, False)}
    assert (await kb.call_suggestions("c-9", AGENT))["suggestions"][0]["id"] == refund.id
    with pytest.raises(NotFound):
        await kb.call_suggestions("c-10", AGENT)


async def test_the_sample_loads_into_an_empty_kb_completes_a_cut_import_and_never_touches_edits(kb, tmp_path):
    import shutil

    part = tmp_path / "part"
    part.mkdir()
    for name in ("refund-procedure.md", "payment-cancel.md"):
        shutil.copy(SAMPLE / name, part / name)
    assert len((await kb.load_sample_if_empty(part)).created) == 2  # as if the first start was cut short
    refund = await kb.repository.by_slug("refund-procedure")
    await kb.update(refund.id, {"title": "환불 절차 (개정)"}, REVIEWER)
    report = await kb.load_sample_if_empty(SAMPLE)
    assert len(report.created) == 12 and "refund-procedure" in report.unchanged
    assert (await kb.repository.by_slug("refund-procedure")).title == "환불 절차 (개정)"
    assert await kb.load_sample_if_empty(SAMPLE) is None  # complete: nothing to do
    await kb.create({"slug": "own", "title": "우리 문서"}, AGENT)
    assert await kb.load_sample_if_empty(SAMPLE) is None  # the team's own articles: never again


async def test_concurrent_edits_one_wins_the_other_is_a_conflict(kb):
    import asyncio

    a = await kb.create({"slug": "race", "title": "경쟁", "body": "v1"}, AGENT)
    results = await asyncio.gather(
        kb.update(a["id"], {"body": "A"}, AGENT), kb.update(a["id"], {"body": "B"}, AGENT), return_exceptions=True
    )
    ok = [r for r in results if isinstance(r, dict)]
    assert ok and all(isinstance(r, (dict, Conflict)) for r in results), results  # never a crash
    versions = [v["version"] for v in await kb.versions(a["id"], AGENT)]
    assert versions == list(range(1, len(ok) + 2))  # every saved edit is one version, none lost or doubled
    assert (await kb.article(a["id"], AGENT))["version"] == versions[-1]


async def test_a_storage_failure_is_a_clear_503_and_saves_nothing(kb):
    from kb.service import Unavailable

    a = await kb.create({"slug": "s", "title": "t"}, AGENT)
    kb.store.fail_puts = 1  # recording.storage.MemoryStorage: the next put fails
    with pytest.raises(Unavailable, match="nothing was saved"):
        await kb.add_attachment(a["id"], "a.pdf", None, b"%PDF", AGENT)
    assert (await kb.article(a["id"], AGENT))["attachments"] == []
    att = await kb.add_attachment(a["id"], "a.pdf", None, b"%PDF", AGENT)
    kb.store.objects.clear()
    with pytest.raises(NotFound, match="missing"):
        await kb.attachment(att["id"], AGENT)


async def test_the_sample_gives_every_intent_of_the_shipped_flow_a_suggestion_in_both_languages(sample_kb):
    """Done-when of issue 17: the shipped sample (Korean and English, a dozen articles) makes the
    demo flow (dialplans/main.yaml) pop suggestions out of the box, for every intent it sets."""
    import re

    from kb.rules import CallContext

    articles = await sample_kb.repository.list_articles(status="published")
    assert len(articles) >= 14 and {a.language for a in articles} == {"ko", "en"}
    flow = (SAMPLE.parents[1] / "dialplans" / "main.yaml").read_text(encoding="utf-8")
    intents = {m.group(1) for m in re.finditer(r"""intent: "'([a-z:]+)'""", flow)}
    assert {"billing", "refund", "tech:", "sales", "general"} <= intents, intents
    for intent in sorted((intents - {"tech:"}) | {"tech:internet", "tech:other"}):
        for language in ("ko", "en"):
            sugg = await sample_kb.suggest(CallContext(intent=intent, language=language))
            assert sugg and sugg[0]["reasons"][0]["rule"] == "ivr-intent", (intent, language, sugg)
