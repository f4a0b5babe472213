"""The post-call survey (issue 9 item 4): the IVR hands the caller to a queue with
``IVR_SURVEY_FLOW=survey``; the agent hangs up first; ``[queue-entry]`` (Queue option ``c``)
sends the caller to ``[survey]``, which runs the survey flow on callcore's one FastAGI route
``ivr``; the caller's answers land on the call's IVR record."""

from __future__ import annotations

from tests.e2e.conftest import eventually, expect_prompt, heard, press_when_listening

CALLER = "01012345678"


async def test_caller_answers_the_survey_after_the_agent_hangs_up(server):
    s = server
    pbx = s.pbx
    tok = await s.create_agent("1001", "김상담", ["sales"])
    await s.api("POST", "/api/agents/1001/login", token=tok, expect=200)
    await eventually(lambda: "Local/1001@agents/n" in pbx.queues["sales"].members, what="1001 in sales")
    agent = pbx.agent("1001", manual=True)

    call = await pbx.dial(CALLER, name="홍길동", exten="15881234", context="ivr-in")
    await expect_prompt(call, "main_menu", timeout=10)
    await press_when_listening(call, "3")  # sales
    await call.wait_for_queue("sales", timeout=10)
    assert call.variables["IVR_SURVEY_FLOW"] == "survey"  # the queue node's `survey: survey`
    await agent.answer()
    await call.wait(3)
    await agent.hangup()  # the agent hangs up first: the caller stays, Queue() returns (option c)

    await expect_prompt(call, "survey_q_satisfaction", timeout=10)
    agis = [e["AppData"] for e in call.events("Newexten") if e.get("Application") == "AGI"]
    assert agis[-1].endswith("/ivr?flow=survey") and f":{s.container.agi.port}/" in agis[-1]
    await press_when_listening(call, "4")
    await expect_prompt(call, "survey_q_resolved")
    await press_when_listening(call, "1")
    await expect_prompt(call, "survey_thanks")
    await call.wait_for_hangup(timeout=10)  # the survey flow ends with a hangup node

    session = await s.api("GET", f"/api/ivr/sessions/{call.uniqueid}", expect=200)
    assert sorted((a["question"], a["answer"], a["flow"]) for a in session["survey"]) == [
        ("resolved", 1, "survey"), ("satisfaction", 4, "survey")
    ]
    # the survey run did not replace the call's IVR context (the one the pop showed)
    ctx = await s.container.ivr.context_for(call.uniqueid)
    assert ctx["flow"] == "main" and ctx["outcome"] == "queue"
    assert "welcome" in heard(call) and "survey_thanks" in heard(call)
