"""Issue 20 rough edge: `callcore dialplan graph -o x.png` drew Korean titles as empty boxes
(Helvetica hard-coded). The graph now uses an installed font with Hangul, or says which package
provides one."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pytest

from ivr import cli
from ivr.checker import check_dir
from ivr.graph import LATIN_FONT, pick_font, to_dot

ROOT = Path(__file__).resolve().parents[3]


def main_flow():
    return check_dir(ROOT / "dialplans", check_sounds=False).flows["main"]


def latin_flow(tmp_path):
    (tmp_path / "en.yaml").write_text("flow: en\nlanguages: [en]\nstart: bye\nnodes:\n  bye:\n    type: hangup\n")
    return check_dir(tmp_path, check_sounds=False).flows["en"]


def test_korean_flow_gets_a_font_with_hangul(tmp_path):
    flow = main_flow()
    assert pick_font(flow, lambda: {"DejaVu Sans", "NanumGothic", "Noto Sans CJK KR"}) == ("Noto Sans CJK KR", None)
    assert pick_font(flow, lambda: {"NanumGothic"}) == ("NanumGothic", None)
    font, advice = pick_font(flow, lambda: set())
    assert font == LATIN_FONT and "fonts-noto-cjk" in advice and "empty boxes" in advice
    # a flow without Korean text keeps Helvetica and needs nothing
    assert pick_font(latin_flow(tmp_path), lambda: set()) == (LATIN_FONT, None)
    dot = to_dot(flow, "Noto Sans CJK KR")
    assert 'node [fontname="Noto Sans CJK KR"' in dot and 'graph [fontname="Noto Sans CJK KR"]' in dot
    assert "Helvetica" not in dot


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz not installed")
def test_rendered_svg_uses_the_hangul_font(tmp_path):
    from ivr.graph import _installed_families

    if "Noto Sans CJK KR" not in _installed_families():
        pytest.skip("fonts-noto-cjk not installed (scripts/bootstrap installs it)")
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="cmd"))
    out = tmp_path / "main.svg"
    lines: list[str] = []
    args = parser.parse_args(["dialplan", "graph", "main", "--dir", str(ROOT / "dialplans"), "-o", str(out)])
    assert cli.cmd_graph(args, lines.append) == 0, lines
    svg = out.read_text(encoding="utf-8")
    assert 'font-family="Noto Sans CJK KR' in svg and "고객센터" in svg
    assert not [line for line in lines if line.startswith("note:")]
