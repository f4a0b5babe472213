"""The dialplan checker knows Asterisk's voicemail.conf (issue 9 item 6): a voicemail node whose
mailbox the configured voicemail.conf does not define is an error, not a silent dead end."""

from __future__ import annotations

from pathlib import Path

from callcore.settings import Settings
from ivr.checker import check_dir, voicemail_mailboxes

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = ROOT / "asterisk-config" / "voicemail.conf"

FLOW = """\
flow: vm
languages: [ko]
start: vm
nodes:
  vm:
    type: voicemail
    mailbox: "{box}"
"""


def _flow(tmp_path: Path, box: str) -> Path:
    d = tmp_path / "plans"
    d.mkdir(exist_ok=True)
    (d / "vm.yaml").write_text(FLOW.format(box=box), encoding="utf-8")
    return d


def test_voicemail_conf_parser():
    text = "[general]\nformat = wav\n[zonemessages]\neu => x\n[callcore]\nsales => 0000,Sales ; c\n; 9 => x\n[other]\n1 => 1\n"
    assert voicemail_mailboxes(text) == {"callcore": {"sales"}, "other": {"1"}}


def test_shipped_flows_pass_against_the_shipped_voicemail_conf():
    result = check_dir(ROOT / "dialplans", check_sounds=False, voicemail_conf=SHIPPED)
    assert result.ok, [str(p) for p in result.errors]
    # the after-hours mailbox of main.yaml is really in the shipped file
    assert "1000" in voicemail_mailboxes(SHIPPED.read_text(encoding="utf-8"))["customer-center"]


def test_undefined_mailbox_context_and_box_are_errors(tmp_path):
    conf = tmp_path / "voicemail.conf"
    conf.write_text("[general]\n[callcore]\nsales => 0000,Sales\n", encoding="utf-8")
    r = check_dir(_flow(tmp_path, "1000@customer-center"), check_sounds=False, voicemail_conf=conf)
    assert [p.message for p in r.errors] == [
        f"voicemail 'vm': mailbox '1000@customer-center' is not defined: voicemail.conf {conf} has no context "
        "[customer-center] (contexts: callcore)"
    ]
    assert (r.errors[0].pos.line, r.errors[0].pos.col) == (7, 14)  # the mailbox: line
    r = check_dir(_flow(tmp_path, "sale@callcore"), check_sounds=False, voicemail_conf=conf)
    assert len(r.errors) == 1 and "has no mailbox 'sale' (did you mean 'sales'?)" in r.errors[0].message
    # no @context: Asterisk's "default" context
    r = check_dir(_flow(tmp_path, "sales"), check_sounds=False, voicemail_conf=conf)
    assert len(r.errors) == 1 and "no context [default]" in r.errors[0].message
    assert check_dir(_flow(tmp_path, "sales@callcore"), check_sounds=False, voicemail_conf=conf).ok


def test_unreadable_voicemail_conf_warns_and_none_skips(tmp_path):
    plans = _flow(tmp_path, "1000@nowhere")
    r = check_dir(plans, check_sounds=False, voicemail_conf=tmp_path / "missing.conf")
    assert r.ok and len(r.warnings) == 1 and "could not be read" in r.warnings[0].message
    assert check_dir(plans, check_sounds=False, voicemail_conf=None).problems == []


def test_setting_defaults_to_the_shipped_file_and_empty_disables(monkeypatch):
    assert Settings().voicemail_conf == Path("asterisk-config/voicemail.conf")
    monkeypatch.setenv("CALLCORE_VOICEMAIL_CONF", "")
    assert Settings().voicemail_conf is None
    monkeypatch.setenv("CALLCORE_VOICEMAIL_CONF", "/etc/asterisk/voicemail.conf")
    assert Settings().voicemail_conf == Path("/etc/asterisk/voicemail.conf")


def test_cli_check_uses_the_voicemail_conf(tmp_path, capsys):
    import argparse

    from ivr import cli

    conf = tmp_path / "voicemail.conf"
    conf.write_text("[callcore]\nsales => 0000\n", encoding="utf-8")
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="cmd"))
    plans = _flow(tmp_path, "1000@customer-center")
    lines: list[str] = []
    args = parser.parse_args(["dialplan", "check", str(plans), "--no-sounds", "--voicemail-conf", str(conf)])
    assert cli.cmd_check(args, lines.append) == 1 and "no context [customer-center]" in lines[0]
    args = parser.parse_args(["dialplan", "check", str(plans), "--no-sounds", "--voicemail-conf", "none"])
    assert cli.cmd_check(args, lines.append) == 0
