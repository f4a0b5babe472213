"""Every node type through the console channel."""

from __future__ import annotations

from datetime import datetime

import pytest

from ivr.lookup import FixtureLookupClient
from ivr.ports import InMemoryCallbackSink, RouteDecision

from .helpers import SEOUL, TUESDAY_10, flows, heard, run


async def test_play_plays_every_prompt_in_the_callers_language_then_next():
    fl = flows(main="""
        languages: [ko, en]
        start: hi
        nodes:
          hi: {type: play, prompt: {ko: [annyeong, welcome], en: hello}, next: bye}
          bye: {type: hangup, prompt: goodbye}
    """)
    outcome, ch = await run(fl, [])
    assert heard(ch) == ["ko/annyeong", "ko/welcome", "ko/goodbye"]
    assert outcome.kind == "hangup"
    assert ch.hung_up
    outcome, ch = await run(fl, [], lang="en")
    assert heard(ch) == ["en/hello", "en/goodbye"]
    assert [s.node for s in outcome.steps] == ["hi", "bye"]


MENU = """
    languages: [ko]
    start: m
    nodes:
      m:
        type: menu
        prompt: menu
        options: {"1": one, "2": two}
        timeout: 3
        retries: 3
        invalid_prompt: invalid
        timeout_prompt: noinput
        on_fail: fail
      one: {type: hangup, prompt: one}
      two: {type: hangup, prompt: two}
      fail: {type: hangup, prompt: sorry}
"""


async def test_menu_digit_selects_option():
    outcome, ch = await run(flows(main=MENU), ["2"])
    assert heard(ch) == ["ko/menu", "ko/two"]
    assert outcome.context["digits"] == [{"node": "main:m", "input": "2"}]
    assert outcome.steps[0].input == "2"
    assert "digit 2 → two" in outcome.steps[0].detail


async def test_menu_invalid_and_timeout_retry_then_succeed():
    outcome, ch = await run(flows(main=MENU), ["7", "", "1"])
    assert heard(ch) == ["ko/menu", "ko/invalid", "ko/menu", "ko/noinput", "ko/menu", "ko/one"]
    assert outcome.end_node == "main:one"


async def test_menu_after_last_try_goes_to_on_fail():
    outcome, ch = await run(flows(main=MENU), ["9", "9", ""])
    assert heard(ch) == ["ko/menu", "ko/invalid", "ko/menu", "ko/invalid", "ko/menu", "ko/sorry"]
    assert outcome.end_node == "main:fail"
    assert "no tries left → fail" in outcome.steps[0].detail


async def test_menu_barge_in_during_prompt():
    from ivr.console import ConsoleChannel
    from ivr.engine import Engine

    from .helpers import call_info

    ch = ConsoleChannel(call_info(), ["2"], barge_in=True)
    fl = flows(main=MENU)
    outcome = await Engine(fl, clock=lambda: TUESDAY_10).run(ch, "main")
    assert outcome.end_node == "main:two"
    assert ch.transcript[:4] == ["☎ answer", "⚙ set CHANNEL(language)=ko", "▶ play ko/menu", "⌨ 2"]


COLLECT = """
    languages: [ko]
    start: ask
    nodes:
      ask:
        type: collect
        prompt: [enter, then_hash]
        var: acct
        min_length: 4
        max_length: 6
        pattern: "[1-9][0-9]*"
        retries: 3
        invalid_prompt: invalid
        timeout_prompt: noinput
        next: ok
        on_fail: fail
      ok: {type: say, digits: acct, next: bye}
      bye: {type: hangup}
      fail: {type: hangup, prompt: sorry}
"""


async def test_collect_stores_digits_without_terminator_and_validates():
    outcome, ch = await run(flows(main=COLLECT), ["0123#", "", "98765#"])
    # pattern mismatch, timeout, then valid
    assert heard(ch) == ["ko/enter", "ko/then_hash", "ko/invalid", "ko/enter", "ko/then_hash", "ko/noinput",
                         "ko/enter", "ko/then_hash", "🔢 say digits 98765"]
    assert "does not match" in outcome.steps[0].detail
    assert outcome.variables["acct"] == "98765"
    assert outcome.kind == "hangup"


async def test_collect_stops_at_max_length_and_fails_after_retries():
    outcome, _ = await run(flows(main=COLLECT), ["1234567890"])
    assert outcome.variables["acct"] == "123456"
    outcome, ch = await run(flows(main=COLLECT), ["12#", "1", "1"])
    assert outcome.end_node == "main:fail"
    assert "2 digits, need 4-6" in outcome.steps[0].detail
    assert "acct" not in outcome.variables


async def test_say_digits_number_and_date():
    fl = flows(main="""
        languages: [ko]
        timezone: Asia/Seoul
        start: s1
        nodes:
          s1: {type: say, digits: "caller", next: s2}
          s2: {type: say, prompt: amount, number: "1200 * 3", next: s3}
          s3: {type: say, date: "'2026-12-25'", next: s4}
          s4: {type: say, number: "'not a number'", next: bye}
          bye: {type: hangup}
    """)
    outcome, ch = await run(fl, [], caller="010-1234-5678")
    expected_epoch = int(datetime(2026, 12, 25, tzinfo=SEOUL).timestamp())
    assert heard(ch) == ["🔢 say digits 01012345678", "ko/amount", "🔢 say number 3600", f"📅 say date {expected_epoch}"]
    assert "is not a number" in outcome.steps[3].detail
    assert outcome.kind == "hangup"


async def test_set_and_branch_on_variables_caller_dialed_language_and_time():
    fl = flows(main="""
        languages: [ko, en]
        timezone: Asia/Seoul
        start: s
        nodes:
          s:
            type: set
            vars:
              n: "1 + 2"
              greeting: "'hi ' + caller"
            next: b
          b:
            type: branch
            conditions:
              - {if: "dialed == '0800'", goto: free}
              - {if: "startswith(caller, '02')", goto: seoul}
              - {if: "lang == 'en'", goto: english}
              - {if: "now_hour >= 18 or now_weekday in ['sat', 'sun']", goto: evening}
            else: other
          free: {type: hangup, prompt: free}
          seoul: {type: hangup, prompt: seoul}
          english: {type: hangup, prompt: english}
          evening: {type: hangup, prompt: evening}
          other: {type: hangup, prompt: other}
    """)
    o, ch = await run(fl, [], dialed="0800")
    assert heard(ch) == ["ko/free"] and o.variables["n"] == 3 and o.variables["greeting"] == "hi 01012345678"
    o, ch = await run(fl, [], caller="0212345678")
    assert heard(ch) == ["ko/seoul"]
    assert "condition 2 `startswith(caller, '02')` is true (caller='0212345678')" in o.steps[1].detail
    o, ch = await run(fl, [], lang="en")
    assert heard(ch) == ["en/english"]
    o, ch = await run(fl, [], at=datetime(2026, 12, 22, 19, 0, tzinfo=SEOUL))
    assert heard(ch) == ["ko/evening"]
    o, ch = await run(fl, [])
    assert heard(ch) == ["ko/other"]
    assert "no condition true" in o.steps[1].detail


HOURS = """
    languages: [ko]
    start: h
    schedules:
      office:
        timezone: Asia/Seoul
        weekly: {mon-fri: "09:00-18:00"}
        holidays: [{date: 2026-12-25, name: Christmas}]
        exceptions: [{date: 2026-12-24, hours: "09:00-12:00"}]
    nodes:
      h: {type: hours, schedule: office, open: o, closed: c, holiday: hol}
      o: {type: hangup, prompt: open}
      c: {type: hangup, prompt: closed}
      hol: {type: hangup, prompt: holiday}
"""


@pytest.mark.parametrize(
    ("at", "prompt", "status"),
    [
        (datetime(2026, 12, 22, 10, 0, tzinfo=SEOUL), "ko/open", "open"),
        (datetime(2026, 12, 22, 20, 0, tzinfo=SEOUL), "ko/closed", "closed"),
        (datetime(2026, 12, 25, 10, 0, tzinfo=SEOUL), "ko/holiday", "holiday"),
        (datetime(2026, 12, 24, 13, 0, tzinfo=SEOUL), "ko/closed", "closed"),
        (datetime(2026, 12, 24, 11, 0, tzinfo=SEOUL), "ko/open", "open"),
    ],
)
async def test_hours_routes_by_schedule(at, prompt, status):
    o, ch = await run(flows(main=HOURS), [], at=at)
    assert heard(ch) == [prompt]
    assert o.context["hours"] == status


LOOKUP = """
    languages: [ko]
    start: l
    agent_vars: [name, tier]
    nodes:
      l:
        type: lookup
        path: /customers/{caller}
        timeout: 0.3
        wait_prompt: wait
        map: {name: customer.name, tier: customer.tier}
        required: name
        next: found
        fallback: fb
      found: {type: hangup, prompt: found}
      fb: {type: hangup, prompt: fallback}
"""


@pytest.mark.parametrize(
    ("response", "prompt", "status"),
    [
        ({"customer": {"name": "홍길동", "tier": "vip"}}, "ko/found", "ok"),
        ({"status": 404}, "ko/fallback", "error"),
        ("garbage", "ko/fallback", "error"),
        ("timeout", "ko/fallback", "timeout"),
        ([1, 2, 3], "ko/fallback", "invalid"),
        ({"customer": {"name": {"nested": "object"}}}, "ko/fallback", "invalid"),
        ({"customer": {"tier": "vip"}}, "ko/fallback", "invalid"),  # required field missing
    ],
)
async def test_lookup_maps_results_or_takes_fallback(response, prompt, status):
    lk = FixtureLookupClient({"/customers/01012345678": response})
    o, ch = await run(flows(main=LOOKUP), [], lookup=lk)
    assert heard(ch) == ["ko/wait", prompt]  # never silence: the wait prompt plays first
    assert o.context["lookups"]["main:l"]["status"] == status
    assert o.variables["lookup_status"] == status
    if status == "ok":
        assert o.context["agent"] == {"name": "홍길동", "tier": "vip"}
    else:
        assert "name" not in o.variables


async def test_lookup_path_quotes_caller_data_and_strips_control_characters():
    lk = FixtureLookupClient({"*": {"customer": {"name": "evil\r\nHANGUP", "tier": "x"}}})
    o, _ = await run(flows(main=LOOKUP), [], lookup=lk, caller="01/../x?y 1")
    assert lk.calls[0][1] == "/customers/01%2F..%2Fx%3Fy%201"
    assert o.variables["name"] == "evil  HANGUP"


async def test_language_set_and_menu():
    fl = flows(main="""
        languages: [ko, en]
        start: pick
        nodes:
          pick: {type: language, prompt: choose, options: {"1": ko, "2": en}, retries: 2, next: force}
          force: {type: play, prompt: hello, next: to_ko}
          to_ko: {type: language, set: ko, next: bye}
          bye: {type: hangup, prompt: bye}
    """)
    o, ch = await run(fl, ["5", "2"])
    assert heard(ch) == ["ko/choose", "ko/choose", "en/hello", "ko/bye"]
    assert "⚙ set CHANNEL(language)=en" in ch.transcript
    assert o.language == "ko"
    o, ch = await run(fl, ["", ""])  # no choice: keeps the current language
    assert heard(ch) == ["ko/choose", "ko/choose", "ko/hello", "ko/bye"]


async def test_goto_subflow_and_return():
    fl = flows(
        main="""
            languages: [ko]
            start: g
            agent_vars: [topic]
            nodes:
              g: {type: goto, target: call_sub}
              call_sub: {type: subflow, flow: sub, next: after}
              after: {type: say, digits: "topic", next: bye}
              bye: {type: hangup}
        """,
        sub="""
            languages: [ko]
            start: m
            nodes:
              m: {type: menu, prompt: submenu, options: {"3": s}, on_fail: r}
              s: {type: set, vars: {topic: "'33'"}, next: r}
              r: {type: return}
        """,
    )
    o, ch = await run(fl, ["3"])
    assert heard(ch) == ["ko/submenu", "🔢 say digits 33"]
    assert o.context["path"] == ["main:g", "main:call_sub", "sub:m", "sub:s", "sub:r", "main:after", "main:bye"]
    assert o.context["agent"] == {"topic": "33"}


async def test_return_in_a_top_level_flow_ends_the_call():
    fl = flows(main="languages: [ko]\nstart: r\nnodes:\n  r: {type: return}\n")
    o, _ = await run(fl, [])
    assert o.kind == "hangup"


QUEUE = """
    languages: [ko]
    start: q
    agent_vars: [tier]
    nodes:
      q:
        type: queue
        queue: billing
        priority: "2 + 3"
        vip: "caller == '01099999999'"
        timeout: 300
        prompt: connecting
        callback_over: 120
        callback: offer
        survey: main
        data: {who: caller, note: "'billing question'"}
      offer: {type: menu, prompt: offer, options: {"1": cb, "2": wait}, on_fail: wait}
      wait: {type: queue, queue: billing}
      cb: {type: callback, queue: billing, prompt: thanks}
"""


class RecordingRouter:
    def __init__(self, **decision):
        self.decision = decision
        self.requests = []

    async def route(self, request):
        self.requests.append(request)
        return RouteDecision(queue=self.decision.get("queue", request.queue), priority=self.decision.get("priority", request.priority),
                             timeout=self.decision.get("timeout"), estimated_wait=self.decision.get("estimated_wait"),
                             offer_callback=self.decision.get("offer_callback", False), reasons=tuple(self.decision.get("reasons", ())))


async def test_queue_hands_off_with_router_decision_and_screen_pop_data():
    router = RecordingRouter(queue="billing-overflow", priority=7, reasons=["overflow: no agent"], estimated_wait=30)
    o, ch = await run(flows(main=QUEUE), [], router=router, caller="01099999999")
    assert o.kind == "queue"
    assert (o.queue, o.priority, o.timeout, o.estimated_wait) == ("billing-overflow", 7, 300, 30)
    assert o.data == {"who": "01099999999", "note": "billing question"}
    assert o.survey_flow == "main"
    assert o.route_reasons == ["overflow: no agent"]
    req = router.requests[0]
    assert (req.queue, req.priority, req.vip, req.caller_num) == ("billing", 5, True, "01099999999")
    assert req.context["data"] == o.data
    assert heard(ch) == ["ko/connecting"]
    assert not ch.hung_up  # the dialplan continues with Queue()
    assert o.context["queue"]["queue"] == "billing-overflow"


async def test_queue_offers_callback_when_wait_is_long_and_callback_is_stored():
    sink = InMemoryCallbackSink()
    o, ch = await run(flows(main=QUEUE), ["1"], router=RecordingRouter(estimated_wait=600), callbacks=sink)
    assert heard(ch) == ["ko/offer", "ko/thanks"]
    assert o.kind == "callback" and o.callback_id == "cb-1"
    req = sink.requests[0]
    assert (req.number, req.queue, req.call_uniqueid, req.requested_time) == ("01012345678", "billing", "1700000000.1", None)
    assert req.context["path"] == ["main:q", "main:offer", "main:cb"]
    assert ch.hung_up
    o, ch = await run(flows(main=QUEUE), ["2"], router=RecordingRouter(offer_callback=True))
    assert o.kind == "queue" and o.end_node == "main:wait"


async def test_callback_uses_collected_number_and_queue_variable():
    fl = flows(main="""
        languages: [ko]
        start: num
        nodes:
          num: {type: collect, prompt: enter, var: cbnum, min_length: 9, max_length: 11, next: q, on_fail: q}
          q: {type: set, vars: {which: "'tech'", when: "'14:00'"}, next: cb}
          cb: {type: callback, number: cbnum, time: when, queue: general, queue_var: which}
    """)
    sink = InMemoryCallbackSink()
    o, _ = await run(fl, ["0212345678#"], callbacks=sink)
    assert (sink.requests[0].number, sink.requests[0].queue, sink.requests[0].requested_time) == ("0212345678", "tech", "14:00")
    assert o.context["callback"] == {"id": "cb-1", "number": "0212345678", "time": "14:00", "queue": "tech"}


async def test_voicemail_execs_voicemail_application_with_arguments():
    fl = flows(main="languages: [ko]\nstart: v\nnodes:\n  v: {type: voicemail, mailbox: '1000@default', options: s, prompt: leave}\n")
    o, ch = await run(fl, [])
    assert ch.executed == [("VoiceMail", ("1000@default", "s"))]
    assert o.kind == "voicemail" and ch.hung_up
    assert heard(ch) == ["ko/leave"]


async def test_survey_records_answers_with_retries():
    fl = flows(main="""
        languages: [ko]
        start: s
        nodes:
          s:
            type: survey
            questions:
              - {id: csat, prompt: q1, min: 1, max: 5}
              - {id: solved, prompt: q2, min: 1, max: 2}
              - {id: nps, prompt: q3, min: 0, max: 9}
            retries: 2
            invalid_prompt: invalid
            thanks: thanks
            next: bye
          bye: {type: hangup}
    """)
    o, ch = await run(fl, ["9", "4", "1", "", ""])
    assert o.survey_answers == {"csat": 4, "solved": 1, "nps": None}
    assert heard(ch) == ["ko/q1", "ko/invalid", "ko/q1", "ko/q2", "ko/q3", "ko/invalid", "ko/q3", "ko/thanks"]
    assert o.variables["survey_csat"] == 4


async def test_caller_hangup_records_where_the_caller_dropped():
    o, _ = await run(flows(main=MENU), ["9"])
    assert o.kind == "caller_hangup"
    assert o.end_node == "main:m"
    assert o.steps[-1].result == "caller hung up"


async def test_step_log_has_offsets_and_durations():
    ticks = iter(range(0, 10_000, 250))
    o, _ = await run(flows(main=MENU), ["1"], monotonic=lambda: next(ticks) / 1000)
    assert [(s.seq, s.node, s.type) for s in o.steps] == [(1, "m", "menu"), (2, "one", "hangup")]
    assert all(s.duration_ms > 0 for s in o.steps)
    assert o.steps[1].started_ms > o.steps[0].started_ms


async def test_step_limit_stops_a_runaway_call():
    fl = flows(main="""
        languages: [ko]
        start: m
        nodes:
          m: {type: menu, prompt: p, options: {"1": a}, on_fail: a}
          a: {type: set, vars: {x: "1"}, next: m}
    """)
    o, _ = await run(fl, ["1"] * 100, max_steps=20)
    assert o.kind == "error" and "20 steps" in o.error


# ------------------------------------------------------------------ PCI: sensitive collect (issue 13)
SENSITIVE = COLLECT.replace("        var: acct\n", "        var: acct\n        sensitive: true\n").replace(
    "      ok: {type: say, digits: acct, next: bye}", "      ok: {type: play, prompt: thanks, next: bye}")


class _Recorder:
    """The recording port: remembers every mute/unmute request."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bool, str]] = []

    async def sensitive_input(self, call_id: str, active: bool, node: str) -> None:
        self.calls.append((call_id, active, node))


async def test_sensitive_collect_mutes_the_recording_and_masks_the_digits():
    rec = _Recorder()
    outcome, ch = await run(flows(main=SENSITIVE), ["0123#", "4111222#"], recording=rec)
    assert rec.calls == [("1700000000.1", True, "main:ask"), ("1700000000.1", False, "main:ask")]
    assert outcome.variables["acct"] == "****"  # what is stored / sent to the pop
    assert "4111222" not in repr(outcome.steps) and "0123" not in repr(outcome.steps)
    assert outcome.steps[0].input == "****,******" and outcome.steps[0].detail.endswith("acct = ******")
    assert outcome.context["digits"] == [{"node": "main:ask", "input": "****"}, {"node": "main:ask", "input": "******"}]


async def test_sensitive_collect_unmutes_even_when_the_caller_hangs_up():
    rec = _Recorder()
    outcome, _ = await run(flows(main=SENSITIVE), [], recording=rec)
    assert [active for _, active, _ in rec.calls] == [True, False]
    plain, _ = await run(flows(main=COLLECT), ["98765#"], recording=rec)
    assert len(rec.calls) == 2 and plain.variables["acct"] == "98765"  # not sensitive: nothing muted



async def test_expression_environment_follows_the_clock_and_the_call_with_one_shared_engine():
    """Engine._env caches what cannot change in a call and the clock fields per minute (issue 18,
    round five): the clock moving within a call and between calls, each call its own names."""
    from ivr.channel import CallInfo
    from ivr.console import ConsoleChannel
    from ivr.engine import Engine, _Call

    fl = flows(main="""
        languages: [ko]
        timezone: Asia/Seoul
        start: end
        nodes:
          end: {type: hangup}
    """)
    now = [datetime(2026, 12, 22, 10, 0, tzinfo=SEOUL)]
    engine = Engine(fl, clock=lambda: now[0])
    flow = fl["main"]

    def call(caller: str, x: str) -> _Call:
        info = CallInfo(uniqueid=f"u{caller}", channel="SIP/x", caller_num=caller, caller_name=None, dialed="1588",
                        language="ko", params={"x": x, "bad-name": "no"}, args=(f"a{caller}",))
        return _Call(ConsoleChannel(info, []), "ko")

    one = call("0101", "p1")
    env = engine._env(one, flow)
    assert (env["now_date"], env["now_time"], env["now_weekday"], env["now_hour"]) == ("2026-12-22", "10:00", "tue", 10)
    assert (env["caller"], env["param_x"], env["arg1"], env["lang"], env["flow"]) == ("0101", "p1", "a0101", "ko", "main")
    assert "param_bad-name" not in env
    env["caller"] = "mutated"  # a caller of _env may not poison the cache
    one.vars["caller"] = "var"  # a flow variable never hides a built-in
    one.vars["n"] = 3
    one.lang = "en"
    now[0] = datetime(2026, 12, 26, 23, 59, 59, tzinfo=SEOUL)
    env = engine._env(one, flow)
    assert (env["now_date"], env["now_time"], env["now_weekday"], env["now_minute"]) == ("2026-12-26", "23:59", "sat", 59)
    assert (env["caller"], env["n"], env["lang"]) == ("0101", 3, "en")
    two = call("0202", "p2")
    now[0] = datetime(2026, 12, 27, 0, 0, tzinfo=SEOUL)
    env = engine._env(two, flow)
    assert (env["caller"], env["param_x"], env["arg1"], env["now_date"], env["now_weekday"]) == ("0202", "p2", "a0202", "2026-12-27", "sun")
    assert "n" not in env
