"""The IVR journey in words (node ``label``s) that the screen pop shows the agent."""

from __future__ import annotations

import textwrap

from ivr.flow import parse_flow

from .helpers import flows, run

FLOW = """
    languages: [ko, en]
    start: lang
    nodes:
      lang:
        type: language
        prompt: press9
        options: {"9": en}
        timeout: 1
        next: menu_ask
        label: {ko: "언어: {language}", en: "Language: {language}"}
      menu_ask: {type: menu, prompt: menu, options: {"1": card}, timeout: 2, on_fail: bye}
      card: {type: set, vars: {topic: "'card'"}, next: contract, label: {ko: 카드 결제, en: Card payment}}
      contract:
        type: collect
        prompt: enter
        var: contract
        min_length: 4
        max_length: 4
        timeout: 3
        next: q
        on_fail: bye
        label: {ko: "계약번호 {input} 입력", en: "Contract {contract} entered"}
      q: {type: queue, queue: billing, label: "→ {topic}"}
      bye: {type: hangup}
"""



async def test_labels_become_the_journey_in_each_language_with_what_the_caller_entered():
    fl = flows(main=FLOW)
    outcome, _ = await run(fl, ["t", "t", "1", "1234#"])
    journey = outcome.context["journey"]
    assert [" → ".join(e["text"]["ko"] for e in journey[:3])] == ["언어: 한국어 → 카드 결제 → 계약번호 1234 입력"]
    assert [e["text"]["en"] for e in journey[:3]] == ["Language: Korean", "Card payment", "Contract 1234 entered"]
    assert journey[3] == {"node": "main:q", "text": {"*": "→ card"}}  # one text for every language; the node that ended the IVR too
    assert all(":" in e["node"] for e in journey)  # node ids are kept for tools, the page shows only "text"
    # a caller who chose English reads the same journey
    outcome, _ = await run(fl, ["9", "1", "1234#"])
    assert outcome.context["journey"][0]["text"] == {"ko": "언어: 영어", "en": "Language: English"}


def test_a_bad_label_is_a_checker_error_with_its_position():
    src = textwrap.dedent("""
        start: a
        nodes:
          a: {type: hangup, label: [not, text]}
    """)
    flow, problems = parse_flow(src, "x.yaml", name="x")
    assert any("field 'label'" in str(p) and "x.yaml:4" in str(p) for p in problems), [str(p) for p in problems]
