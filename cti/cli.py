"""``callcore desk AGENT``: watch an agent's desk from a terminal.

Connects to callcore's websocket (``/ws``) as agent ``AGENT`` and prints every event the
desk receives — ``hello``, ``call.ringing`` (the screen pop: caller, CRM record, IVR context),
``call.answered``, ``call.ended``… — one line each: ``<event> <payload as JSON>``. Without
``--token`` it signs one with the server's key, like ``callcore token AGENT``: ``CALLCORE_JWT_KEY``,
or with ``--dev`` the dev-mode key of the data directory (a ``scripts/serve`` server). It waits for
the server (retries the connection), so it can start before ``scripts/serve`` is up.
``--until call.ringing`` exits 0 after the first pop (scripts, the README's emulator recipe).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any, Callable

RETRY_SECONDS = 0.5


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> argparse.ArgumentParser:
    p = subparsers.add_parser("desk", help="watch an agent's desk: print every websocket event (screen pops) it receives")
    p.add_argument("agent_id", help="the agent whose desk to watch (e.g. 1001)")
    p.add_argument("--url", help="callcore's base URL (default: http://CALLCORE_HTTP_HOST:CALLCORE_HTTP_PORT)")
    p.add_argument("--token", help="bearer token (default: one signed with the server's key for the agent)")
    p.add_argument("--dev", action="store_true", help="sign with the dev-mode key of the data directory (a server in dev mode)")
    p.add_argument("--until", metavar="EVENT", help="exit 0 after the first EVENT (e.g. call.ringing)")
    p.add_argument("--timeout", type=float, help="give up (exit 1) after this many seconds")
    p.set_defaults(func=cmd_desk)
    return p


def cmd_desk(args: argparse.Namespace, out: Callable[[str], None] | None = None) -> int:
    from callcore.settings import Settings

    settings = Settings(**({"dev_mode": True} if args.dev else {}))
    token = args.token
    if token is None:
        from api.auth import issue_token
        from auth.checker import signing_keys

        token = issue_token(signing_keys(settings), args.agent_id, "agent", 12 * 3600)
    base = (args.url or f"http://{settings.http_host}:{settings.http_port}").rstrip("/")
    url = base.replace("https://", "wss://").replace("http://", "ws://") + f"/ws?token={token}"
    write = out or (lambda line: print(line, flush=True))
    try:
        return asyncio.run(asyncio.wait_for(watch(url, write, args.until), args.timeout) if args.timeout else watch(url, write, args.until))
    except asyncio.TimeoutError:
        print(f"callcore desk: no {args.until or 'end'} within {args.timeout} s", file=sys.stderr)
        return 1


async def watch(url: str, write: Callable[[str], None], until: str | None = None) -> int:
    """Print the desk's events; reconnect while the server is not up (or restarts)."""
    import websockets

    announced = False
    while True:
        try:
            async with websockets.connect(url) as ws:
                async for raw in ws:
                    msg: dict[str, Any] = json.loads(raw)
                    write(f"{msg.get('event')} {json.dumps(msg.get('payload'), ensure_ascii=False, default=str)}")
                    if until is not None and msg.get("event") == until:
                        return 0
        except (OSError, websockets.exceptions.InvalidHandshake, websockets.exceptions.ConnectionClosed) as exc:
            if isinstance(exc, websockets.exceptions.InvalidStatus) and exc.response.status_code in (401, 403):
                print(f"callcore desk: refused ({exc.response.status_code}): check the token / CALLCORE_JWT_KEY (--dev for a "
                      "server in dev mode)", file=sys.stderr)
                return 1
            closed = getattr(exc, "rcvd", None)
            if closed is not None and closed.code in (4401, 4403):  # refused after the handshake
                print(f"callcore desk: refused ({closed.code} {closed.reason}): check the token / CALLCORE_JWT_KEY (--dev "
                      "for a server in dev mode)", file=sys.stderr)
                return 1
            if not announced:
                print(f"callcore desk: waiting for callcore at {url.split('?', 1)[0]} ({exc.__class__.__name__})", file=sys.stderr, flush=True)
                announced = True
        await asyncio.sleep(RETRY_SECONDS)
