"""The Korean analysis path on real sentences (pure: no database)."""

from kb.analysis import Synonyms, Vocabulary, analyse_query, highlight, jamo


def test_inflections_particles_and_spacing_meet_on_the_same_terms(analyzer):
    # inflected verbs: the noun survives, endings and auxiliaries do not
    assert analyzer.terms("환불해주세요") == ["환불"]
    assert analyzer.terms("환불해 주실 수 있나요?") == ["환불"]
    assert "환불" in analyzer.terms("환불은 언제 되나요")
    # particles are dropped
    assert analyzer.terms("비밀번호를") == analyzer.terms("비밀번호") == ["비밀", "번호"]
    # spacing variants: a compound noun with and without spaces
    assert analyzer.terms("카드결제") == analyzer.terms("카드 결제") == ["카드", "결제"]
    # verb stems are terms
    assert "잊어버리" in analyzer.terms("비밀번호를 잊어버렸어요")


def test_english_is_lower_cased_and_stemmed(analyzer):
    assert analyzer.terms("Refunds for CANCELLED payments") == ["refund", "cancel", "payment"]


def test_typos_are_corrected_against_the_indexed_vocabulary(analyzer):
    vocab = Vocabulary(["환불", "절차", "카드", "결제", "refund"])
    assert "환뷸" not in vocab and jamo("환뷸") != jamo("환불")
    q = analyse_query("환뷸해주세요", analyzer, None, vocab)
    assert q.corrected == {"환뷸해주세요": ["환불"]} and q.expanded == ["환불"]
    q = analyse_query("refnd", analyzer, None, vocab)
    assert q.expanded == ["refund"]
    # known words are never "corrected"
    assert analyse_query("카드 결제", analyzer, None, vocab).corrected == {}
    # too far away: no correction at all
    assert analyse_query("주소", analyzer, None, vocab).expanded == ["주소"]


def test_a_valid_korean_word_is_not_taken_for_a_typo_of_an_indexed_one(analyzer):
    vocab = Vocabulary(["신규", "가입", "분실", "환불"])
    assert "신고" not in vocab and len(vocab.corrections("신고")) == 1  # one jamo from 신규
    q = analyse_query("기기 분실 신고", analyzer, None, vocab)
    assert q.corrected == {} and "신규" not in q.expanded and "신고" in q.expanded
    assert analyse_query("신고하려고요", analyzer, None, vocab).expanded == ["신고"]
    # a real typo in the same query is still corrected
    q = analyse_query("환뷸 신고", analyzer, None, vocab)
    assert q.corrected == {"환뷸": ["환불"]} and q.expanded == ["환불", "신고"]


def test_synonyms_expand_queries_and_are_not_taken_for_typos(analyzer):
    syn = Synonyms(analyzer, [["비밀번호", "비번", "password"], ["환불", "환급"]])
    vocab = Vocabulary(["비밀", "번호", "재설정", "설정", "이번"])
    q = analyse_query("비번 재설정", analyzer, syn, vocab)
    assert q.corrected == {}  # 비번 is a synonym, not a typo of 이번
    assert set(q.expanded) >= {"비번", "비밀", "번호", "password"}
    assert analyse_query("환급 문의", analyzer, syn, None).synonyms == ["환불"]


def test_highlight_escapes_html_and_marks_terms():
    assert highlight("<b>환불</b> 절차", ["환불"]) == "&lt;b&gt;<mark>환불</mark>&lt;/b&gt; 절차"
    long = "가" * 300 + " 환불 절차 " + "나" * 300
    snippet = highlight(long, ["환불"], width=60)
    assert snippet.startswith("…") and snippet.endswith("…") and "<mark>환불</mark>" in snippet and len(snippet) < 100


def test_query_analysis_is_cached_and_bounded(analyzer, monkeypatch):
    import kb.analysis as analysis

    analyzer = analysis.Analyzer(analyzer.kiwi)  # an empty cache (the fixture's is shared)
    monkeypatch.setattr(analysis, "QUERY_CACHE", 2)
    calls = []
    real = analyzer.tokens
    monkeypatch.setattr(analyzer, "tokens", lambda text: calls.append(text) or real(text))
    first = analyzer.query_tokens("환불해주세요")
    assert analyzer.query_tokens("환불해주세요") == first and calls == ["환불해주세요"]
    assert [t.term for t in first] == ["환불"]
    analyzer.query_tokens("비밀번호")
    analyzer.query_tokens("카드 결제")  # the oldest ("환불해주세요") leaves the cache
    analyzer.query_tokens("환불해주세요")
    assert calls == ["환불해주세요", "비밀번호", "카드 결제", "환불해주세요"]
