"""The dialplan contexts, as Python, mirroring ``asterisk-config/extensions.conf``.

Two profiles:

* ``callcore`` (default): the project's deployable dialplan (``asterisk-config/extensions.conf``).
* ``capture``: the dialplan of the capture run (``tests/fixtures/asterisk-captures/asterisk-etc``),
  used by the conformance tests so that the emulator replays the captured scenarios exactly.

Each ``priority`` below emits ``Newexten`` like Asterisk does; the mapping table is in
``tests/pbxsim/README.md``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from .model import Channel, Recording

if TYPE_CHECKING:  # pragma: no cover
    from .pbx import Pbx


def _agi_url(pbx: "Pbx", script: str) -> str:
    return f"agi://{pbx.cfg.agi_host}:{pbx.cfg.agi_port}/{script}"


async def run_context(pbx: "Pbx", ch: Channel, context: str, exten: str) -> None:
    profile = getattr(pbx.cfg, "dialplan", "callcore")
    fn = (CAPTURE if profile == "capture" else CALLCORE).get(context)
    if fn is None:
        fn = COMMON.get(context)
    if fn is None:
        # no such context/extension: Asterisk hangs the channel up
        pbx.newexten(ch, "Hangup", "", priority=1)
        return
    await fn(pbx, ch, exten)


# ----------------------------------------------------------------- applications
def mixmonitor(pbx: "Pbx", ch: Channel, filename: str, options: str) -> Recording:
    assert pbx.monitor_dir is not None
    path = Path(filename) if filename.startswith("/") else pbx.monitor_dir / filename
    legs = re.findall(r"([rt])\(([^)]*)\)", options)  # r(<file>) / t(<file>): each direction apart
    flags = re.sub(r"[rt]\([^)]*\)", "", options)
    rec = Recording(path, "b" in flags, pbx.now(), ch.bridge is not None,
                    legs={k: pbx.monitor_dir / f for k, f in legs})
    ch.recording = rec
    pbx.setvar(ch, "MIXMONITOR_FILENAME", str(path))
    pbx.emit("MixMonitorStart", pbx.snap(ch))
    return rec


async def agi(pbx: "Pbx", ch: Channel, url: str, args: tuple[str, ...]) -> str:
    from .agi import run_agi

    status = await run_agi(pbx, ch, url, args)
    pbx.setvar(ch, "AGISTATUS", status)
    return status


async def queue(pbx: "Pbx", ch: Channel, name: str, opts: str, timeout: float | None) -> str:
    prio = int(ch.vars.get("QUEUE_PRIO") or 0)
    return await pbx.queue_app(ch, name, timeout, prio)


def _timeout(ch: Channel, default: float) -> float:
    try:
        return float(ch.vars.get("IVR_TIMEOUT") or default)
    except ValueError:
        return default


# ----------------------------------------------------------------- callcore profile
async def callcore_ivr_in(pbx: "Pbx", ch: Channel, exten: str) -> None:
    if exten != "s":
        pbx.newexten(ch, "Set", f"__CALLCORE_DID={exten}", priority=1)
        pbx.setvar(ch, "__CALLCORE_DID", exten)
        ch.vars["CALLCORE_DID"] = exten
        pbx.step(ch, "Goto", "ivr-in,s,1")
        ch.exten = "s"
    pbx.newexten(ch, "NoOp", "IVR entry", priority=1)
    url = _agi_url(pbx, pbx.cfg.ivr_script)
    pbx.step(ch, "AGI", ",".join((url, *pbx.cfg.ivr_args)))
    status = await agi(pbx, ch, url, pbx.cfg.ivr_args)
    pbx.step(ch, "NoOp", f"AGI returned IVR_QUEUE={ch.vars.get('IVR_QUEUE', '')} AGISTATUS={status}")
    if ch.hangup_ev.is_set():
        return
    qname = ch.vars.get("IVR_QUEUE", "")
    pbx.step(ch, "GotoIf", f"{0 if qname else 1}?done")
    if not qname:
        return
    pbx.step(ch, "Goto", f"queue-entry,{qname},1")
    await callcore_enter_queue(pbx, ch, qname)


async def callcore_enter_queue(pbx: "Pbx", ch: Channel, qname: str) -> None:
    """``[queue-entry]``: priority, one recording per call, Queue, then voicemail / survey."""
    ch.context, ch.exten = "queue-entry", qname
    if qname not in pbx.queues:
        pbx.newexten(ch, "Hangup", "", priority=1)
        return
    prio = ch.vars.get("IVR_PRIORITY") or "0"
    pbx.newexten(ch, "Set", f"QUEUE_PRIO={prio}", priority=1)
    pbx.setvar(ch, "QUEUE_PRIO", prio)
    # recording options from callcore's CALLCORE_RECORD / _REC_START / _REC_STEREO (extensions.conf)
    opts = "" if ch.vars.get("CALLCORE_REC_START") == "queue" else "b"
    pbx.step(ch, "Set", f"CALLCORE_REC_OPTS={opts}")
    stereo = ch.vars.get("CALLCORE_REC_STEREO") == "1"
    if stereo:
        opts += f"r({ch.uniqueid}-caller.wav)t({ch.uniqueid}-agent.wav)"
    pbx.step(ch, "ExecIf", f"{1 if stereo else 0}?Set(CALLCORE_REC_OPTS={opts})")
    pbx.setvar(ch, "CALLCORE_REC_OPTS", opts)
    record = ch.recording is None and ch.vars.get("CALLCORE_RECORD") != "0"
    pbx.step(ch, "ExecIf", f"{1 if record else 0}?MixMonitor({ch.uniqueid}.wav,{opts})")
    if record:
        mixmonitor(pbx, ch, f"{ch.uniqueid}.wav", opts)
    timeout = _timeout(ch, 600)
    pbx.step(ch, "Queue", f"{qname},tc,,,{int(timeout)}")
    status = await queue(pbx, ch, qname, "tc", timeout)
    if ch.hangup_ev.is_set():
        return
    pbx.step(ch, "GotoIf", f"{1 if status == 'TIMEOUT' else 0}?voicemail,{qname},1")
    if status == "TIMEOUT":
        await callcore_voicemail(pbx, ch, qname)
        return
    survey = ch.vars.get("IVR_SURVEY_FLOW", "")
    pbx.step(ch, "GotoIf", f"{1 if survey else 0}?survey,s,1")
    if survey:
        ch.context, ch.exten = "survey", "s"
        await callcore_survey(pbx, ch, "s")


async def callcore_queue_direct(pbx: "Pbx", ch: Channel, exten: str) -> None:
    """``[queue-direct]``: straight into queue ``${EXTEN}`` (used by Redirect and ``transfer``)."""
    if exten not in pbx.queues:
        pbx.newexten(ch, "Hangup", "", priority=1)
        return
    pbx.newexten(ch, "Answer", "", priority=1)
    pbx.step(ch, "Goto", f"queue-entry,{exten},1")
    await callcore_enter_queue(pbx, ch, exten)


async def callcore_transfer(pbx: "Pbx", ch: Channel, exten: str) -> None:
    """``[transfer]``: blind transfers — a queue name, an agent extension 1XXX, or an outside number."""
    if exten in pbx.queues:
        pbx.newexten(ch, "Goto", f"queue-direct,{exten},1", priority=1)
        ch.context, ch.exten = "queue-direct", exten
        await callcore_queue_direct(pbx, ch, exten)
        return
    if re.fullmatch(r"1\d{3}", exten):
        pbx.newexten(ch, "Dial", f"PJSIP/{exten},30,tT", priority=1)
        from .directdial import dial_agent

        status = await dial_agent(pbx, ch, exten)
        pbx.step(ch, "GotoIf", f"{1 if status == 'ANSWER' else 0}?done")
        if status != "ANSWER":
            await callcore_voicemail(pbx, ch, exten, priority=3)
        return
    if re.fullmatch(r"9\d{3}", exten):  # the shipped test agents: Dial(Local/9XXX@callcore-test-agent/n,30,tT)
        pbx.newexten(ch, "Dial", f"Local/{exten}@callcore-test-agent/n,30,tT", priority=1)
        from .directdial import dial_local

        await dial_local(pbx, ch, exten, "callcore-test-agent")
        return
    pbx.newexten(ch, "Dial", f"PJSIP/{exten}@trunk,60,T", priority=1)
    from .directdial import dial_external

    await dial_external(pbx, ch, exten)


async def callcore_voicemail(pbx: "Pbx", ch: Channel, box: str, priority: int | None = None) -> None:
    """``VoiceMail(box@callcore,u)``: greeting, then the caller talks until hangup (max 120 s)."""
    from .pbx import HungUp

    if priority is None:
        ch.context, ch.exten = "voicemail", box
    pbx.newexten(ch, "VoiceMail", f"{box}@callcore,u", priority=priority or 1)
    ch.prompts.append("vm-intro")
    pbx.notify()
    try:
        await pbx.wait_on(ch, 120.0, redirectable=True)
    except HungUp:
        pbx.setvar(ch, "VMSTATUS", "SUCCESS")
        raise
    pbx.setvar(ch, "VMSTATUS", "SUCCESS")


async def callcore_voicemail_ctx(pbx: "Pbx", ch: Channel, exten: str) -> None:
    await callcore_voicemail(pbx, ch, exten)


async def callcore_survey(pbx: "Pbx", ch: Channel, exten: str) -> None:
    url = _agi_url(pbx, pbx.cfg.survey_script.replace("{IVR_SURVEY_FLOW}", ch.vars.get("IVR_SURVEY_FLOW", "")))
    pbx.newexten(ch, "AGI", url, priority=1)
    await agi(pbx, ch, url, ())


async def sim_caller_on_one(pbx: "Pbx", ch: Channel, exten: str) -> None:
    """``[sim-caller]`` run by a ``;1`` half (click-to-call: the "customer" answers and waits)."""
    from .pbx import Hangup, Press, Wait, _fmt_num

    steps = pbx.scripts.get(exten)
    if steps is None:
        pbx.newexten(ch, "Hangup", "", priority=1)
        return
    pbx.newexten(ch, "Answer", "", priority=1)
    for step in steps:
        if isinstance(step, Wait):
            pbx.step(ch, "Wait", _fmt_num(step.seconds))
            await pbx.wait_on(ch, step.seconds, redirectable=True)
        elif isinstance(step, Press):
            pbx.step(ch, "SendDTMF", step.digits)
        elif isinstance(step, Hangup):
            return


async def outbound(pbx: "Pbx", ch: Channel, exten: str) -> None:
    """``[outbound]``: the recording callcore's Originate asked for (``CALLCORE_RECORD``,
    ``CALLCORE_REC_STEREO``; option ``b``), then click-to-call's customer leg ``Dial(PJSIP/${EXTEN}@trunk,60)``."""
    opts = "b"
    pbx.newexten(ch, "Set", f"CALLCORE_REC_OPTS={opts}", priority=1)
    pbx.setvar(ch, "CALLCORE_REC_OPTS", opts)
    stereo = ch.vars.get("CALLCORE_REC_STEREO") == "1"
    if stereo:
        opts += f"r({ch.uniqueid}-agent.wav)t({ch.uniqueid}-caller.wav)"
        pbx.setvar(ch, "CALLCORE_REC_OPTS", opts)
    pbx.step(ch, "ExecIf", f"{1 if stereo else 0}?Set(CALLCORE_REC_OPTS={opts})")
    record = ch.recording is None and ch.vars.get("CALLCORE_RECORD") == "1"
    pbx.step(ch, "ExecIf", f"{1 if record else 0}?MixMonitor({ch.uniqueid}.wav,{opts})")
    if record:
        mixmonitor(pbx, ch, f"{ch.uniqueid}.wav", opts)
    pbx.step(ch, "Dial", f"PJSIP/{exten}@trunk,60,T")
    from .directdial import dial_external

    await dial_external(pbx, ch, exten)


async def callcore_queue_entry(pbx: "Pbx", ch: Channel, exten: str) -> None:
    await callcore_enter_queue(pbx, ch, exten)


async def callcore_hold(pbx: "Pbx", ch: Channel, exten: str) -> None:
    """``[hold]`` (callcore's hold: ``Redirect`` customer → ``s``, ``ExtraChannel`` agent → ``agent``;
    unhold is AMI ``Bridge``, whose after-bridge goto brings each leg back here at priority 2)."""
    if exten not in ("s", "agent"):
        pbx.newexten(ch, "Hangup", "", priority=1)
        return
    if ch.priority <= 1:
        if exten == "s":
            pbx.newexten(ch, "MusicOnHold", "default", priority=1)
            pbx.start_moh(ch, "default")
            try:
                await pbx.wait_on(ch, None, redirectable=True)  # until hung up, redirected or bridged
            finally:
                pbx.stop_moh(ch)
        else:
            pbx.newexten(ch, "Wait", "3600", priority=1)
            await pbx.wait_on(ch, 3600.0, redirectable=True)
    ch.priority = 1  # priority 2 is Hangup() (run by the caller of run_context)


async def chanspy(pbx: "Pbx", ch: Channel, data: str) -> None:
    """``ChanSpy(<channel prefix>,<options>)`` run by ``ch`` (an Originate ``Application=ChanSpy``):
    spies on the first live channel whose name starts with the prefix (not ``ch`` itself).
    With option ``E`` it returns when the spied channel hangs up; without it ChanSpy goes on
    scanning and ``ch`` stays up until it is hung up (ami-chanspy-listen: ``q`` only, the spyer
    outlived ChanSpyStop). Nothing to spy on: returns with ``S``, otherwise keeps scanning.
    ``ChanSpyStop`` comes when the spied channel goes (see ``Pbx.detach_spies``) or ChanSpy ends."""
    spec, _, opts = data.partition(",")
    ch.app, ch.appdata = "ChanSpy", data
    target = pbx.channels.get(spec) or next(
        (c for name, c in pbx.channels.items() if spec and name.startswith(spec) and c is not ch and not c.gone), None
    )
    if target is None:
        if "S" not in opts:
            await pbx.wait_on(ch, None)  # scans until hung up
        return
    pbx.emit("ChanSpyStart", [("Spyer" + k, v) for k, v in pbx.snap(ch)] + [("Spyee" + k, v) for k, v in pbx.snap(target)])
    ch.vars["SPY_OPTIONS"] = opts
    target.spies.append(ch)
    try:
        await pbx.wait_on(ch, None, event=target.hangup_ev)
    finally:
        if ch in target.spies:  # not yet stopped by the spied call's teardown (Pbx.detach_spies)
            target.spies.remove(ch)
            pbx.emit("ChanSpyStop", [("Spyer" + k, v) for k, v in pbx.snap(ch)] + [("Spyee" + k, v) for k, v in pbx.snap(target)])
    if "E" not in opts:
        await pbx.wait_on(ch, None)  # no E: ChanSpy keeps scanning, the supervisor's channel stays up


def _spy(mode: str):
    opts = {"listen": "qES", "whisper": "qESw", "barge": "qESB"}[mode]

    async def spy(pbx: "Pbx", ch: Channel, exten: str) -> None:
        """``[spy-<mode>]``: ChanSpy(PJSIP/${EXTEN},<opts>) on the agent's active call."""
        pbx.newexten(ch, "ChanSpy", f"PJSIP/{exten},{opts}", priority=1)
        agent = pbx.agents.get(exten)
        target = None
        if agent is not None and agent.current is not None and not agent.current.one.gone:
            target = agent.current.one
        if target is None:  # option S: nothing to spy on, ChanSpy returns
            return
        spy_h = [(("Spyer" + k), v) for k, v in pbx.snap(ch)] + [(("Spyee" + k), v) for k, v in pbx.snap(target)]
        pbx.emit("ChanSpyStart", spy_h)
        ch.vars["SPY_MODE"] = mode
        target.spies.append(ch)
        try:
            await pbx.wait_on(ch, None, event=target.hangup_ev, redirectable=True)  # option E
        finally:
            if ch in target.spies:
                target.spies.remove(ch)
                pbx.emit("ChanSpyStop", [(("Spyer" + k), v) for k, v in pbx.snap(ch)] + [(("Spyee" + k), v) for k, v in pbx.snap(target)])

    return spy


CALLCORE = {
    "spy-listen": _spy("listen"),
    "spy-whisper": _spy("whisper"),
    "spy-barge": _spy("barge"),
    "ivr-in": callcore_ivr_in,
    "queue-entry": callcore_queue_entry,
    "queue-direct": callcore_queue_direct,
    "transfer": callcore_transfer,
    "voicemail": callcore_voicemail_ctx,
    "survey": callcore_survey,
    "outbound": outbound,
    "hold": callcore_hold,
}


# ----------------------------------------------------------------- capture profile
async def capture_ivr_in(pbx: "Pbx", ch: Channel, exten: str) -> None:
    pbx.newexten(ch, "NoOp", "IVR entry", priority=1)
    url = _agi_url(pbx, "ivr")
    pbx.step(ch, "AGI", f"{url},arg one,2")
    status = await agi(pbx, ch, url, ("arg one", "2"))
    pbx.step(ch, "NoOp", f"AGI returned IVR_QUEUE={ch.vars.get('IVR_QUEUE', '')} AGISTATUS={status}")
    if ch.hangup_ev.is_set():
        return
    qname = ch.vars.get("IVR_QUEUE", "")
    pbx.step(ch, "GotoIf", f"{0 if qname else 1}?done")
    if not qname:
        return
    pbx.step(ch, "MixMonitor", f"{ch.uniqueid}.wav,b")
    mixmonitor(pbx, ch, f"{ch.uniqueid}.wav", "b")
    pbx.step(ch, "Queue", f"{qname},t,,,60")
    await queue(pbx, ch, qname, "t", 60)


async def capture_ivr_hangup(pbx: "Pbx", ch: Channel, exten: str) -> None:
    url = _agi_url(pbx, "ivr?flow=main&lang=ko")
    pbx.newexten(ch, "AGI", url, priority=1)
    status = await agi(pbx, ch, url, ())
    if ch.hangup_ev.is_set():
        return
    pbx.step(ch, "NoOp", f"after agi {status}")


async def capture_queue_direct(pbx: "Pbx", ch: Channel, exten: str) -> None:
    pbx.newexten(ch, "Answer", "", priority=1)
    if exten == "sales":
        pbx.step(ch, "Set", "CALLCORE_IVR_PATH=main>1")
        pbx.setvar(ch, "CALLCORE_IVR_PATH", "main>1")
        pbx.step(ch, "MixMonitor", f"{ch.uniqueid}.wav,b")
        mixmonitor(pbx, ch, f"{ch.uniqueid}.wav", "b")
    if exten not in pbx.queues:
        return
    pbx.step(ch, "Queue", f"{exten},t,,,60")
    await queue(pbx, ch, exten, "t", 60)


CAPTURE = {
    "ivr-in": capture_ivr_in,
    "ivr-hangup": capture_ivr_hangup,
    "queue-direct": capture_queue_direct,
}

COMMON = {
    "sim-caller": sim_caller_on_one,
    "transfer": callcore_transfer,
    "outbound": outbound,
}
