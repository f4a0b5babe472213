"""asterisk-config/ is deployable as shipped: what extensions.conf / queues.conf reference is
defined (music classes, mailboxes, queues, FastAGI routes, IVR variables), and the files a clean
Asterisk needs are there (issue 9 items 4, 5, 10)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from callcore.settings import Settings
from ivr.checker import voicemail_mailboxes
from tests.pbxsim import PbxConfig

ROOT = Path(__file__).resolve().parents[3]
CONF = ROOT / "asterisk-config"


def sections(text: str) -> dict[str, list[str]]:
    """``[name]`` (and ``[name](template)``) → its lines, comments stripped."""
    out: dict[str, list[str]] = {}
    cur = None
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"\[([^\]]+)\](\(.*\))?", line)
        if m:
            cur = m.group(1)
            out.setdefault(cur, [])
        elif cur is not None:
            out[cur].append(line)
    return out


def extensions() -> str:
    return (CONF / "extensions.conf").read_text()


# ---- item 5: music on hold and RTP
def test_musiconhold_and_rtp_conf_are_shipped():
    moh = sections((CONF / "musiconhold.conf").read_text())
    assert "default" in moh and "mode = files" in moh["default"]
    rtp = sections((CONF / "rtp.conf").read_text())["general"]
    start = int(next(v for v in rtp if v.startswith("rtpstart")).split("=")[1])
    end = int(next(v for v in rtp if v.startswith("rtpend")).split("=")[1])
    assert 1024 < start < end <= 65535 and start % 2 == 0
    readme = (CONF / "README.md").read_text()
    assert "`musiconhold.conf`" in readme and f"UDP {start}–{end}" in readme  # the documented port range


def test_every_music_class_referenced_is_defined():
    defined = set(sections((CONF / "musiconhold.conf").read_text())) - {"general"}
    used = set(re.findall(r"MusicOnHold\(([^,)]*)", extensions()))
    used |= set(re.findall(r"CHANNEL\(musicclass\)=([^)\s]+)", extensions()))
    for lines in sections((CONF / "queues.conf").read_text()).values():
        used |= {ln.split("=", 1)[1].strip() for ln in lines if ln.replace(" ", "").startswith("musicclass=")}
    used |= {m.group(1) for m in re.finditer(r"[,(]m\(([^)]+)\)", extensions())}
    assert used and used <= defined, f"music classes used but not in musiconhold.conf: {used - defined}"


def test_every_mailbox_and_queue_extensions_conf_uses_is_defined():
    boxes = voicemail_mailboxes((CONF / "voicemail.conf").read_text())
    queues = set(sections((CONF / "queues.conf").read_text())) - {"general", "callcore-queue"}
    for ctx in re.findall(r"VoiceMail(?:Main)?\([^@)]*@([A-Za-z0-9_-]+)", extensions()):
        assert ctx in boxes, f"voicemail context {ctx} not in voicemail.conf"
    # [voicemail] _[a-z]. is reached with a queue name: each queue has its mailbox in [callcore]
    assert queues <= boxes["callcore"], queues - boxes["callcore"]
    # the emulator knows the same queues
    assert queues <= {q.name for q in PbxConfig().queues}


# ---- item 4: the post-call survey contract
def test_survey_uses_the_variable_the_ivr_sets_and_a_route_callcore_serves():
    ext = extensions()
    service = (ROOT / "ivr" / "service.py").read_text()
    assert '("IVR_SURVEY_FLOW", outcome.survey_flow)' in service
    entry = sections(ext)["queue-entry"]
    assert any('GotoIf($["${IVR_SURVEY_FLOW}" != ""]?survey,s,1)' in ln for ln in entry)
    assert not re.search(r"\$\{IVR_SURVEY\}", ext)
    (agi,) = [ln for ln in sections(ext)["survey"] if "AGI(" in ln]
    route = re.search(r"AGI\(agi://[^/]+/([a-z_]+)\?flow=\$\{IVR_SURVEY_FLOW\}\)", agi)
    assert route, agi
    # the one FastAGI route callcore registers
    wiring = (ROOT / "callcore" / "wiring.py").read_text()
    assert re.findall(r'server\.add_route\("([a-z_]+)"', wiring) == [route.group(1)]
    # the emulator runs the same thing
    assert PbxConfig().survey_script == f"{route.group(1)}?flow={{IVR_SURVEY_FLOW}}"


# ---- item 10: one default AMI secret
def test_one_default_ami_secret_everywhere():
    shipped = re.search(r"^secret *= *(\S+)", (CONF / "manager.conf").read_text(), re.M).group(1)
    assert Settings().ami_secret.get_secret_value() == shipped
    assert PbxConfig().secret == shipped
    from tests.e2e.test_live_asterisk import DEFAULT_AMI_SECRET
    from tests.pbxsim.__main__ import build_parser

    assert DEFAULT_AMI_SECRET == shipped
    assert build_parser().parse_args([]).secret == shipped
    assert f"`callcore` / `{shipped}`" in (ROOT / "README.md").read_text()
    assert f"`callcore`, `{shipped}`" in (ROOT / "tests" / "pbxsim" / "README.md").read_text()
    # no other secret is documented as a default anywhere
    for doc in ("README.md", "tests/pbxsim/README.md", "docker/README.md", "asterisk-config/README.md"):
        assert "callcore-secret" not in (ROOT / doc).read_text().replace(shipped, ""), doc


@pytest.mark.parametrize("conf", ["musiconhold.conf", "rtp.conf", "voicemail.conf", "manager.conf"])
def test_compose_mounts_every_shipped_conf(conf):
    assert (CONF / conf).is_file()
