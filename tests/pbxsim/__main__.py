"""Run the PBX emulator as a server, by hand::

    python -m tests.pbxsim --ami-port 5038 --agi 127.0.0.1:4573 \\
        --member "sales=Local/1001@agents/n:Agent 1001" --agent 1001:answer=3,hangup=20 \\
        --call "01012345678:홍길동@ivr-in/15881234" --script "await:main_menu,press:3,wait:40,hangup"

AMI user ``callcore`` (``--secret``); events are printed with ``--verbose``. Ctrl-C stops it.
``--call`` waits until an AMI client (callcore) has logged in and resynchronised (``--call-now``:
at once). Script steps: ``wait:S``, ``press:D``, ``await:PROMPT`` (until the IVR plays that
prompt, so the next press lands while it listens), ``hangup``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from .model import AgentBehavior, PbxConfig, QueueConfig, default_queues
from .pbx import AwaitPrompt, Hangup, Pbx, Press, Step, Wait


def parse_script(text: str) -> list[Step]:
    steps: list[Step] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        kind, _, arg = part.partition(":")
        if kind == "wait":
            steps.append(Wait(float(arg)))
        elif kind == "press":
            steps.append(Press(arg))
        elif kind == "hangup":
            steps.append(Hangup())
        elif kind == "await" and arg:
            steps.append(AwaitPrompt(arg))
        else:
            raise argparse.ArgumentTypeError(f"unknown script step {part!r} (wait:S, press:D, await:PROMPT, hangup)")
    return steps


def parse_agent(text: str) -> tuple[str, AgentBehavior]:
    ext, _, spec = text.partition(":")
    b = AgentBehavior()
    for item in filter(None, spec.split(",")):
        k, _, v = item.partition("=")
        if k == "answer":
            b.answer_after = None if v == "never" else float(v)
        elif k == "hangup":
            b.hangup_after = None if v == "never" else float(v)
        else:
            raise argparse.ArgumentTypeError(f"agent option {k!r}: answer=S|never, hangup=S|never")
    return ext, b


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tests.pbxsim", description="callcore's Asterisk 20 emulator")
    p.add_argument("--ami-host", default="127.0.0.1")
    p.add_argument("--ami-port", type=int, default=5038, help="0 = any free port")
    p.add_argument("--secret", default=PbxConfig.secret, help="AMI secret (default: the one in asterisk-config/manager.conf)")
    p.add_argument("--agi", default="127.0.0.1:4573", help="callcore's FastAGI server host:port")
    p.add_argument("--queues", default="", help="name:strategy[:timeout],... (default: asterisk-config/queues.conf)")
    p.add_argument("--member", action="append", default=[], help="queue=interface[:member name]")
    p.add_argument("--agent", action="append", default=[], help="1001:answer=2,hangup=30 (never = never)")
    p.add_argument("--call", action="append", default=[], help="number[:name][@context/exten] placed at start")
    p.add_argument("--script", default="await:main_menu,press:3,wait:40,hangup",
                   help="caller script for --call: wait:S, press:D, await:PROMPT, hangup (default: into sales via the main menu)")
    p.add_argument("--call-now", action="store_true", help="place --call at start, without waiting for an AMI client")
    p.add_argument("--time-scale", type=float, default=1.0)
    p.add_argument("--prompt-seconds", type=float, default=1.0, help="length of every prompt (virtual seconds)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--monitor-dir", type=Path, default=None)
    p.add_argument("--dialplan", choices=("callcore", "capture"), default="callcore")
    p.add_argument("--system-name", default="", help="asterisk.conf systemname: Uniqueids <name>-<epoch>.<seq> (several servers)")
    p.add_argument("--verbose", "-v", action="store_true", help="print every event")
    return p


async def amain(args: argparse.Namespace) -> int:
    host, _, port = args.agi.rpartition(":")
    queues = default_queues()
    if args.queues:
        queues = []
        for spec in args.queues.split(","):
            parts = spec.split(":")
            q = QueueConfig(parts[0], parts[1] if len(parts) > 1 else "ringall")
            if len(parts) > 2:
                q.timeout = float(parts[2])
            queues.append(q)
    cfg = PbxConfig(
        ami_host=args.ami_host, ami_port=args.ami_port, secret=args.secret, agi_host=host or "127.0.0.1",
        agi_port=int(port), queues=queues, time_scale=args.time_scale, default_prompt_seconds=args.prompt_seconds, seed=args.seed,
        monitor_dir=args.monitor_dir, dialplan=args.dialplan, system_name=args.system_name,
    )
    pbx = Pbx(cfg)
    await pbx.start()
    if args.verbose:
        pbx.listeners.append(lambda e: print(" | ".join(f"{k}: {v}" for k, v in e.headers), flush=True))
    for spec in args.agent:
        ext, b = parse_agent(spec)
        pbx.agent(ext, b)
    for spec in args.member:
        q, _, rest = spec.partition("=")
        iface, _, name = rest.partition(":")
        pbx.add_member(q, iface, name or None)
    print(f"pbxsim: AMI listening on {cfg.ami_host}:{pbx.ami_port} (user {cfg.username}); "
          f"FastAGI client -> {cfg.agi_host}:{cfg.agi_port}; recordings in {pbx.monitor_dir}", flush=True)
    script = parse_script(args.script)
    if args.call and not args.call_now:
        print("pbxsim: waiting for an AMI client (callcore) to log in before placing --call", flush=True)
        await pbx.wait_for_ami_client()
    for spec in args.call:
        who, _, where = spec.partition("@")
        number, _, name = who.partition(":")
        ctx, _, exten = (where or "ivr-in/s").partition("/")
        call = await pbx.dial(number, name or None, context=ctx, exten=exten or "s", script=script)
        print(f"pbxsim: call from {number} on {call.channel} (Uniqueid {call.uniqueid})", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except NotImplementedError:  # pragma: no cover
            pass
    await stop.wait()
    await pbx.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(amain(build_parser().parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
