"""Graphviz DOT for a flow (``callcore dialplan graph``): one box per node, labelled edges."""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Callable

from ivr.flow import Flow, Node

#: fonts with Hangul, best first, and the Debian package that provides each
HANGUL_FONTS = (
    ("Noto Sans CJK KR", "fonts-noto-cjk"),
    ("NanumGothic", "fonts-nanum"),
    ("UnDotum", "fonts-unfonts-core"),
    ("Baekmuk Gulim", "fonts-baekmuk"),
)
LATIN_FONT = "Helvetica"
_HANGUL = re.compile(r"[\u1100-\u11ff\u3130-\u318f\uac00-\ud7af]")


def _installed_families() -> set[str]:
    """Font families fontconfig knows that cover Korean (``fc-list :lang=ko family``)."""
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return set()
    try:
        out = subprocess.run([fc_list, ":lang=ko", "family"], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return set()
    return {name.strip() for line in out.splitlines() for name in line.split(",") if name.strip()}


def needs_hangul(flow: Flow) -> bool:
    return bool(_HANGUL.search(to_dot(flow)))


def pick_font(flow: Flow, families: Callable[[], set[str]] = _installed_families) -> tuple[str, str | None]:
    """The font for the graph: Helvetica for Latin-only flows; for Korean text the first installed
    font with Hangul (Graphviz's Helvetica draws empty boxes). Returns (font, advice or None)."""
    if not needs_hangul(flow):
        return LATIN_FONT, None
    installed = families()
    for name, _package in HANGUL_FONTS:
        if name in installed:
            return name, None
    packages = " or ".join(pkg for _, pkg in HANGUL_FONTS[:2])
    return LATIN_FONT, (f"no font with Hangul is installed: Korean text will be empty boxes; install {packages} "
                        "(Debian/Ubuntu: apt-get install fonts-noto-cjk) and render again")

SHAPES = {
    "menu": ("box", "#dbeafe"), "collect": ("box", "#dbeafe"), "survey": ("box", "#dbeafe"), "language": ("box", "#e0f2fe"),
    "branch": ("diamond", "#fef3c7"), "hours": ("diamond", "#fef3c7"), "lookup": ("hexagon", "#ede9fe"),
    "queue": ("doubleoctagon", "#dcfce7"), "callback": ("doubleoctagon", "#dcfce7"), "voicemail": ("doubleoctagon", "#dcfce7"),
    "hangup": ("octagon", "#fee2e2"), "return": ("octagon", "#f3f4f6"), "subflow": ("component", "#f3f4f6"),
}


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _label(node: Node) -> str:
    a = node.args
    extra = ""
    if node.type == "queue":
        extra = f"\nqueue {a.get('queue')}"
    elif node.type == "subflow":
        extra = f"\n→ flow {a.get('flow')}"
    elif node.type == "hours":
        extra = f"\n{a.get('schedule')}"
    elif node.type == "lookup":
        extra = f"\n{a.get('method')} {a.get('path')}"
    elif node.type == "collect":
        extra = f"\n→ {a.get('var')}"
    label = ""
    if node.label:  # the journey label, as the agent reads it (Korean renders with fonts-noto-cjk)
        label = "\n" + " / ".join(dict.fromkeys(node.label.values()))
    return f"{node.id}{label}\n[{node.type}]{extra}"


def to_dot(flow: Flow, font: str = LATIN_FONT) -> str:
    lines = [
        f"digraph {_q(flow.name)} {{",
        "  rankdir=TB;",
        f"  graph [fontname={_q(font)}];",
        f"  node [fontname={_q(font)}, fontsize=10, style=filled];",
        f"  edge [fontname={_q(font)}, fontsize=9];",
        f"  labelloc=t; label={_q(f'{flow.name} — {flow.description}' if flow.description else flow.name)};",
        '  __start [shape=circle, label="", width=0.2, fillcolor=black];',
        f"  __start -> {_q(flow.start)};",
    ]
    for node in flow.nodes.values():
        shape, color = SHAPES.get(node.type, ("box", "#ffffff"))
        lines.append(f"  {_q(node.id)} [shape={shape}, fillcolor={_q(color)}, label={_q(_label(node))}];")
    for node in flow.nodes.values():
        for edge in node.edges():
            style = ', style=dashed' if edge.label in ("after last try", "fallback", "else", "closed", "holiday", "long wait") else ""
            lines.append(f"  {_q(node.id)} -> {_q(edge.target)} [label={_q(edge.label)}{style}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


class GraphvizMissing(RuntimeError):
    pass


async def render_svg(dot: str, timeout: float = 10.0) -> bytes:
    """SVG of a DOT graph through Graphviz ``dot`` (a subprocess, off the event loop)."""
    import asyncio
    import shutil

    dot_bin = shutil.which("dot")
    if dot_bin is None:
        raise GraphvizMissing("Graphviz 'dot' is not installed on the server (apt-get install graphviz)")
    proc = await asyncio.create_subprocess_exec(
        dot_bin, "-Tsvg", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(dot.encode("utf-8")), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise RuntimeError(f"dot took longer than {timeout} s") from None
    if proc.returncode != 0:
        raise RuntimeError(f"dot failed: {err.decode(errors='replace').strip()}")
    return out
