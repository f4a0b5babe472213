"""The AMI server side: banner, Login, actions with Asterisk 20's response shapes, event fan-out.

Response texts are copied from the captures (``ami-*.raw``) and Asterisk 20's manager
code; each handler says which.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import TYPE_CHECKING, Awaitable, Callable

from .model import ami_timestamp, is_true

if TYPE_CHECKING:  # pragma: no cover
    from .pbx import Event, Pbx

BANNER = b"Asterisk Call Manager/9.0.0\r\n"

Frame = list[tuple[str, str]]


class ActionError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def parse_frame(text: str) -> Frame:
    out: Frame = []
    for line in text.split("\n"):
        line = line.rstrip("\r")
        if not line:
            continue
        k, sep, v = line.partition(":")
        if not sep:
            continue
        out.append((k.strip(), v[1:] if v.startswith(" ") else v))
    return out


def render(headers: Frame) -> bytes:
    return ("".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n").encode("utf-8")


def compile_filters(lines: list[str]) -> tuple[list[re.Pattern], list[re.Pattern]]:
    """Asterisk ``eventfilter`` (legacy regex form): ``!regex`` drops, plain regex allows."""
    allow, deny = [], []
    for line in lines:
        line = line.strip()
        if not line:
            continue
        if line.startswith("!"):
            deny.append(re.compile(line[1:]))
        else:
            allow.append(re.compile(line))
    return allow, deny


#: manager classes each action is registered with in Asterisk 20 (any one grants it; empty = none needed)
ACTION_CLASSES: dict[str, set[str]] = {
    "login": set(), "logoff": set(), "ping": set(), "events": set(), "queuestatus": set(), "queuesummary": set(),
    "originate": {"originate"},
    "redirect": {"call"}, "setvar": {"call"}, "playdtmf": {"call"}, "bridge": {"call"}, "atxfer": {"call"},
    "hangup": {"system", "call"}, "getvar": {"call", "reporting"},
    "queueadd": {"agent"}, "queueremove": {"agent"}, "queuepause": {"agent"}, "queuepenalty": {"agent"},
    "coreshowchannels": {"system", "reporting"},
    "mixmonitor": {"system"}, "stopmixmonitor": {"system", "call"}, "mixmonitormute": {"system", "call"},
    "command": {"command"}, "reload": {"system", "config"}, "getconfig": {"system", "config"},
    "updateconfig": {"config"}, "moduleload": {"system"}, "showdialplan": {"config", "reporting"},
}


def _manager_user(path: str, user: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    section = None
    with open(path, encoding="utf-8") as fh:
        for raw in fh:
            line = raw.split(";", 1)[0].strip()
            if line.startswith("[") and "]" in line:
                section = line[1 : line.index("]")]
                continue
            if section == user and "=" in line:
                k, _, v = line.partition("=")
                out.setdefault(k.strip(), []).append(v.strip().lstrip(">").strip())
    return out


def load_manager_filters(path: str, user: str = "callcore") -> list[str]:
    """The ``eventfilter`` lines of ``[user]`` in a manager.conf."""
    return _manager_user(path, user).get("eventfilter", [])


def load_manager_user(path: str, user: str = "callcore") -> dict:
    """``PbxConfig`` keyword arguments for ``[user]`` of a manager.conf: secret, classes, filters."""
    u = _manager_user(path, user)
    classes = lambda key: {c.strip() for c in ",".join(u.get(key, ["all"])).split(",") if c.strip()}  # noqa: E731
    return {
        "username": user,
        "secret": u.get("secret", [""])[0],
        "read_classes": classes("read"),
        "write_classes": classes("write"),
        "event_filters": u.get("eventfilter", []),
    }


class Session:
    def __init__(self, server: "AmiServer", reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.server = server
        self.pbx = server.pbx
        self.reader = reader
        self.writer = writer
        self.authenticated = False
        self.failed = False
        self.events_on = True
        self.closed = False
        self.allow, self.deny = compile_filters(self.pbx.cfg.event_filters)
        peer = writer.get_extra_info("peername") or ("127.0.0.1", 0)
        sock = writer.get_extra_info("sockname") or ("127.0.0.1", 5038)
        self.remote = f"IPV4/TCP/{peer[0]}/{peer[1]}"
        self.local = f"IPV4/TCP/{sock[0]}/{sock[1]}"
        self.session_id = f"0x{id(self) & 0xFFFFFFFFFFFF:x}"
        self.session_tv = self._tv()
        self.sent: list[bytes] = []

    def _tv(self) -> str:
        t = self.pbx.now()
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int((t % 1) * 1000):03d}+0000"

    def write(self, headers: Frame) -> None:
        if self.closed:
            return
        data = render(headers)
        self.sent.append(data)
        try:
            self.writer.write(data)
        except (ConnectionError, RuntimeError):
            self.closed = True

    def wants(self, ev: "Event", text: str) -> bool:
        if not (self.authenticated and self.events_on) or self.closed:
            return False
        read = self.pbx.cfg.read_classes
        if read is not None and "all" not in read:
            m = re.search(r"Privilege: ([^\r]*)", text)
            if m and not (set(m.group(1).split(",")) - {"all"}) & read:
                return False
        if self.allow and not any(p.search(text) for p in self.allow):
            return False
        if any(p.search(text) for p in self.deny):
            return False
        return True

    # ------------------------------------------------------------- loop
    async def run(self) -> None:
        self.writer.write(BANNER)
        buf = b""
        try:
            while not self.closed:
                chunk = await self.reader.read(65536)
                if not chunk:
                    break
                buf += chunk
                while True:
                    m = re.search(rb"\r?\n\r?\n", buf)
                    if m is None:
                        break
                    raw, buf = buf[: m.start()], buf[m.end() :]
                    frame = parse_frame(raw.decode("utf-8", "replace"))
                    if frame:
                        await self.dispatch(frame)
                    if self.closed:
                        break
                try:
                    await self.writer.drain()
                except ConnectionError:
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.closed = True
            self.server.sessions.discard(self)
            self.writer.close()

    async def dispatch(self, frame: Frame) -> None:
        h = {}
        for k, v in frame:
            h.setdefault(k.lower(), v)
        action = h.get("action", "")
        aid = h.get("actionid")
        if self.failed:
            return  # after a failed login Asterisk answers nothing more (ami-bad-login.raw)
        if not action:
            self.error(aid, "Missing action in request")
            return
        name = action.lower()
        if not self.authenticated and name not in ("login", "logoff", "challenge"):
            self.error(aid, "Permission denied")
            return
        write = self.pbx.cfg.write_classes
        needed = ACTION_CLASSES.get(name)
        if needed and write is not None and "all" not in write and not (needed & write):
            self.error(aid, "Permission denied")
            return
        handler = self.server.handlers.get(name)
        if handler is None:
            self.error(aid, f"Invalid/unknown command: {action}. Use Action: ListCommands to show available commands.")
            self.pbx.emit(
                "RequestBadFormat",
                [
                    ("EventTV", self._tv()),
                    ("Severity", "Error"),
                    ("Service", "AMI"),
                    ("EventVersion", "1"),
                    ("SessionID", self.session_id),
                    ("LocalAddress", self.local),
                    ("RemoteAddress", self.remote),
                    ("RequestType", f"Action: {action}"),
                    ("SessionTV", self.session_tv),
                    ("AccountID", self.pbx.cfg.username),
                ],
                noise=True,
            )
            return
        self.server.actions.append((action, frame))
        try:
            await handler(self, h, frame, aid)
        except ActionError as e:
            self.error(aid, e.message)

    # ------------------------------------------------------------- response helpers
    def _with_id(self, aid: str | None) -> Frame:
        return [("ActionID", aid)] if aid is not None else []

    def success(self, aid: str | None, message: str | None = None, extra: Frame = (), list_start: bool = False) -> None:
        h: Frame = [("Response", "Success"), *self._with_id(aid)]
        if list_start:
            h.append(("EventList", "start"))
        if message is not None:
            h.append(("Message", message))
        h.extend(extra)
        self.write(h)

    def error(self, aid: str | None, message: str) -> None:
        self.write([("Response", "Error"), *self._with_id(aid), ("Message", message)])

    def list_event(self, name: str, headers: Frame) -> None:
        """List items are written to the asking session only (no Privilege line, ActionID last)."""
        self.write([("Event", name), *headers])

    def complete(self, name: str, aid: str | None, items: int) -> None:
        self.write([("Event", name), *self._with_id(aid), ("EventList", "Complete"), ("ListItems", str(items))])


def _chan(pbx: "Pbx", name: str):
    return pbx.channels.get(name)


def _chan_prefix(pbx: "Pbx", name: str):
    """``ast_channel_get_by_name_prefix``: the exact name, else the first channel whose name starts with it."""
    ch = pbx.channels.get(name)
    if ch is not None:
        return ch
    return next((c for n, c in pbx.channels.items() if n.lower().startswith(name.lower())), None)


class AmiServer:
    def __init__(self, pbx: "Pbx") -> None:
        self.pbx = pbx
        self.server: asyncio.base_events.Server | None = None
        self.sessions: set[Session] = set()
        self.port = 0
        self.actions: list[tuple[str, Frame]] = []  # every action received (observation for tests)
        self._session_tasks: set[asyncio.Task] = set()
        self.handlers: dict[str, Callable[[Session, dict, Frame, str | None], Awaitable[None]]] = {
            "login": self.a_login,
            "logoff": self.a_logoff,
            "ping": self.a_ping,
            "originate": self.a_originate,
            "redirect": self.a_redirect,
            "bridge": self.a_bridge,
            "atxfer": self.a_atxfer,
            "hangup": self.a_hangup,
            "queueadd": self.a_queueadd,
            "queueremove": self.a_queueremove,
            "queuepause": self.a_queuepause,
            "queuepenalty": self.a_queuepenalty,
            "queuestatus": self.a_queuestatus,
            "queuesummary": self.a_queuesummary,
            "coreshowchannels": self.a_coreshowchannels,
            "mixmonitor": self.a_mixmonitor,
            "stopmixmonitor": self.a_stopmixmonitor,
            "mixmonitormute": self.a_mixmonitormute,
            "setvar": self.a_setvar,
            "getvar": self.a_getvar,
            "playdtmf": self.a_playdtmf,
            "events": self.a_events,
        }

    async def start(self, host: str, port: int) -> None:
        self.server = await asyncio.start_server(self._accept, host, port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        s = Session(self, reader, writer)
        self.sessions.add(s)
        task = asyncio.current_task()
        if task is not None:
            self._session_tasks.add(task)
        try:
            await s.run()
        finally:
            if task is not None:
                self._session_tasks.discard(task)

    async def stop_listening(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None

    async def drop_sessions(self) -> None:
        for s in list(self.sessions):
            s.closed = True
            try:
                await s.writer.drain()
            except ConnectionError:
                pass
            s.writer.close()
        self.sessions.clear()
        # closing the transports ends each session's read loop; wait for them (bounded)
        pending = [t for t in self._session_tasks if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=1.0)
        for t in pending:
            if not t.done():  # pragma: no cover - a peer that never lets go
                t.cancel()

    async def close(self) -> None:
        await self.stop_listening()
        await self.drop_sessions()

    def broadcast(self, ev: "Event") -> None:
        if not self.sessions:
            return
        text = "".join(f"{k}: {v}\r\n" for k, v in ev.headers)
        for s in list(self.sessions):
            if s.wants(ev, text):
                s.write(ev.headers)

    # ------------------------------------------------------------- actions
    async def a_login(self, s: Session, h: dict, f: Frame, aid: str | None) -> None:
        cfg = self.pbx.cfg
        if h.get("username") != cfg.username or h.get("secret") != cfg.secret:
            s.error(aid, "Authentication failed")
            s.failed = True
            return
        s.authenticated = True
        ev = h.get("events")
        if ev is not None and ev.lower() in ("off", "no", "false", "0"):
            s.events_on = False
        s.success(aid, "Authentication accepted")
        # FullyBooted and SuccessfulAuth go to this session only (it just logged in)
        booted = [
            ("Event", "FullyBooted"),
            ("Privilege", "system,all"),
            ("Uptime", str(self.pbx.uptime())),
            ("LastReload", str(self.pbx.uptime())),
            ("Status", "Fully Booted"),
        ]
        if s.wants(None, "".join(f"{k}: {v}\r\n" for k, v in booted)):  # type: ignore[arg-type]
            s.write(booted)
        if s.events_on and self.pbx.cfg.noise:
            auth = [
                ("Event", "SuccessfulAuth"),
                ("Privilege", "security,all"),
                # a manager_event (security topic): timestampevents applies; FullyBooted above is
                # astman_append'ed to the session by action_login and never carries it
                *([("Timestamp", ami_timestamp(self.pbx.now()))] if self.pbx.cfg.timestampevents else []),
                ("EventTV", s._tv()),
                ("Severity", "Informational"),
                ("Service", "AMI"),
                ("EventVersion", "1"),
                ("AccountID", cfg.username),
                ("SessionID", s.session_id),
                ("LocalAddress", s.local),
                ("RemoteAddress", s.remote),
                ("UsingPassword", "0"),
                ("SessionTV", s.session_tv),
            ]
            text = "".join(f"{k}: {v}\r\n" for k, v in auth)
            if s.wants(None, text):  # type: ignore[arg-type]
                s.write(auth)

    async def a_logoff(self, s: Session, h: dict, f: Frame, aid: str | None) -> None:
        s.write([("Response", "Goodbye"), *s._with_id(aid), ("Message", "Thanks for all the fish.")])
        try:
            await s.writer.drain()
        except ConnectionError:
            pass
        s.closed = True

    async def a_ping(self, s: Session, h: dict, f: Frame, aid: str | None) -> None:
        t = self.pbx.now()
        s.success(aid, None, [("Ping", "Pong"), ("Timestamp", f"{t:.6f}")])

    async def a_events(self, s: Session, h: dict, f: Frame, aid: str | None) -> None:
        mask = h.get("eventmask", "on").lower()
        s.events_on = mask not in ("off", "none", "no", "false", "0")
        s.write([("Response", "Success"), *s._with_id(aid), ("Events", "On" if s.events_on else "Off")])

    async def a_originate(self, s: Session, h: dict, f: Frame, aid: str | None) -> None:
        channel = h.get("channel", "")
        if not channel:
            raise ActionError("Channel not specified")
        variables: dict[str, str] = {}
        for k, v in f:
            if k.lower() == "variable":
                for part in v.split(","):
                    if "=" in part:
                        a, _, b = part.partition("=")
                        variables[a.strip()] = b
        try:
            timeout = float(h.get("timeout", "30000")) / 1000.0
        except ValueError:
            raise ActionError("Invalid timeout") from None
        if timeout <= 0:
            raise ActionError("Invalid timeout")
        try:
            priority = int(h.get("priority", "1") or 1)
        except ValueError:
            raise ActionError("Invalid priority") from None
        async_ = is_true(h.get("async", "false"))
        kw = dict(
            context=h.get("context"),
            exten=h.get("exten"),
            priority=priority,
            application=h.get("application"),
            data=h.get("data", ""),
            callerid=h.get("callerid", ""),
            variables=variables,
            timeout=timeout,
            action_id=aid,
        )
        if async_:
            s.success(aid, "Originate successfully queued")
            self.pbx.spawn(self.pbx.originate(channel, async_=True, **kw), f"originate {channel}")
            return
        ok, _ = await self.pbx.originate(channel, async_=False, **kw)
        if ok:
            s.success(aid, "Originate successfully queued")
        else:
            s.error(aid, "Originate failed")

    async def a_redirect(self, s: Session, h: dict, f: Frame, aid: str | None) -> None:
        # checks in manager.c action_redirect's order
        name = h.get("channel", "")
        if not name:
            raise ActionError("Channel not specified")
        context, exten, prio = h.get("context", ""), h.get("exten", ""), h.get("priority", "")
        if not context:
            raise ActionError("Context not specified")
        if not exten:
            raise ActionError("Exten not specified")
        if not prio:
            raise ActionError("Priority not specified")
        if not prio.isdigit() or int(prio) < 1:
            raise ActionError("Priority is invalid")
        name2, context2 = h.get("extrachannel", ""), h.get("extracontext", "")
        exten2, prio2 = h.get("extraexten", ""), h.get("extrapriority", "")
        if name2 and context2:
            if not exten2:
                raise ActionError("ExtraExten not specified")
            if not prio2:
                raise ActionError("ExtraPriority not specified")
            if not prio2.isdigit() or int(prio2) < 1:
                raise ActionError("ExtraPriority is invalid")
        ch = _chan(self.pbx, name)
        if ch is None:
            raise ActionError(f"Channel does not exist: {name}")
        if ch.hangup_ev.is_set():
            raise ActionError("Redirect failed, channel not up.")
        if not name2:
            self.pbx.redirect(ch, context, exten, int(prio))
            s.success(aid, "Redirect successful")
            return
        ch2 = _chan(self.pbx, name2)
        if ch2 is None:
            raise ActionError(f"ExtraChannel does not exist: {name2}")
        if ch2.hangup_ev.is_set():
            raise ActionError("Redirect failed, extra channel not up.")
        # dual redirect (AST_FLAG_BRIDGE_DUAL_REDIRECT_WAIT): both leave before either bridge reacts
        self.pbx.redirect(ch, context, exten, int(prio))
        if context2:
            self.pbx.redirect(ch2, context2, exten2, int(prio2))
        else:
            self.pbx.redirect(ch2, context, exten, int(prio))
        s.success(aid, "Dual Redirect successful")

    async def a_atxfer(self, s: Session, h: dict, f: Frame, aid: str | None) -> None:
        """``Atxfer`` (main/manager.c ``action_atxfer``): texts and checks in its order."""
        name, exten, context = h.get("channel", ""), h.get("exten", ""), h.get("context", "")
        if not name:
            raise ActionError("No channel specified")
        if not exten:
            raise ActionError("No extension specified")
        ch = _chan(self.pbx, name)
        if ch is None:
            raise ActionError("Channel specified does not exist")
        code = self.pbx.cfg.atxfer_featurecode
        if not code:
            raise ActionError("No attended transfer feature code found")
        if context:
            self.pbx.setvar(ch, "TRANSFER_CONTEXT", context)
        self.pbx.atxfer(ch, code, exten, context)
        s.success(aid, "Atxfer successfully queued")

    async def a_bridge(self, s: Session, h: dict, f: Frame, aid: str | None) -> None:
        """``Bridge`` (main/features.c ``action_bridge``): texts and checks in its order."""
        name1, name2 = h.get("channel1", ""), h.get("channel2", "")
        if not name1 or not name2:
            raise ActionError("Missing channel parameter in request")
        ch1 = _chan_prefix(self.pbx, name1)
        if ch1 is None:
            raise ActionError(f"Channel1 does not exist: {name1}")
        ch2 = _chan_prefix(self.pbx, name2)
        if ch2 is None:
            raise ActionError(f"Channel2 does not exist: {name2}")
        if ch1.hangup_ev.is_set():  # ast_channel_yank fails on a channel being hung up
            raise ActionError(f"Unable to add Channel1 to bridge: {ch1.name}")
        if ch2.hangup_ev.is_set():
            raise ActionError(f"Unable to add Channel2 to bridge: {ch2.name}")
        self.pbx.bridge_channels(ch1, ch2)
        s.success(aid, "Channels have been bridged")

    async def a_hangup(self, s: Session, h: dict, f: Frame, aid: str | None) -> None:
        name = h.get("channel", "")
        if not name:
            raise ActionError("No channel specified")
        # manager.c: no Cause = "do not set hangupcause": a bridged channel ends with the bridge's
        # 16 (normal clearing), a channel alone in an application with 0 (ami-chanspy-listen.raw)
        cause = int(h["cause"]) if h.get("cause") else None
        if name.startswith("/") and name.endswith("/") and len(name) > 2:
            # manager.c: a regex hangs up every match and answers as a list
            rx = re.compile(name[1:-1])
            targets = [c for c in list(self.pbx.channels.values()) if rx.search(c.name)]
            s.success(aid, "Channels hung up will follow", list_start=True)
            for c in targets:
                await self.pbx.hangup_channel(c, cause)
                s.list_event("ChannelHungup", [("Channel", c.name), *s._with_id(aid)])
            s.complete("ChannelsHungupListComplete", aid, len(targets))
            return
        ch = _chan(self.pbx, name)
        if ch is None:
            raise ActionError("No such channel")
        await self.pbx.hangup_channel(ch, cause)
        s.success(aid, "Channel Hungup")

    async def a_queueadd(self, s: Session, h: dict, f: Frame, aid: str | None) -> None:
        q, iface = h.get("queue"), h.get("interface")
        if not q or not iface:
            raise ActionError("'Queue' or 'Interface' not set.")
        if q not in self.pbx.queues:
            raise ActionError("Unable to add interface to queue: No such queue")
        if iface in self.pbx.queues[q].members:
            raise ActionError("Unable to add interface: Already there")
        self.pbx.add_member(
            q,
            iface,
            h.get("membername") or None,
            penalty=int(h.get("penalty", "0") or 0),
            paused=is_true(h.get("paused", "false")),
            reason=h.get("reason", ""),
            state_interface=h.get("stateinterface") or None,
        )
        s.success(aid, "Added interface to queue")

    async def a_queueremove(self, s: Session, h: dict, f: Frame, aid: str | None) -> None:
        q, iface = h.get("queue"), h.get("interface")
        if not q or not iface:
            raise ActionError("Need 'Queue' and 'Interface' parameters.")
        if q not in self.pbx.queues:
            raise ActionError("Unable to remove interface from queue: No such queue")
        if iface not in self.pbx.queues[q].members:
            raise ActionError("Unable to remove interface: Not there")
        self.pbx.remove_member(q, iface)
        s.success(aid, "Removed interface from queue")

    async def a_queuepause(self, s: Session, h: dict, f: Frame, aid: str | None) -> None:
        iface, paused = h.get("interface"), h.get("paused")
        if not iface or paused is None:
            raise ActionError("Need 'Interface' and 'Paused' parameters.")
        p = is_true(paused)
        try:
            self.pbx.pause_member(h.get("queue") or None, iface, p, h.get("reason", ""))
        except KeyError:
            raise ActionError("Interface not found") from None
        s.success(aid, "Interface paused successfully" if p else "Interface unpaused successfully")

    async def a_queuepenalty(self, s: Session, h: dict, f: Frame, aid: str | None) -> None:
        iface, pen = h.get("interface"), h.get("penalty")
        if not iface or pen is None:
            raise ActionError("Need 'Interface' and 'Penalty' parameters.")
        try:
            self.pbx.set_penalty(h.get("queue") or None, iface, int(pen))
        except (KeyError, ValueError):
            raise ActionError("Invalid interface, queuename or penalty") from None
        s.success(aid, "Interface penalty set successfully")

    async def a_queuestatus(self, s: Session, h: dict, f: Frame, aid: str | None) -> None:
        only, member = h.get("queue"), h.get("member")
        s.success(aid, "Queue status will follow", list_start=True)
        n = 0
        now = self.pbx.now()
        for q in self._queue_order():
            if only and q.name != only:
                continue
            s.list_event("QueueParams", q.params(aid))
            n += 1
            for m in q.members.values():
                if member and m.interface != member:
                    continue
                s.list_event("QueueMember", m.status_headers(aid))
                n += 1
            for i, e in enumerate(q.callers, 1):
                c = e.chan
                s.list_event(
                    "QueueEntry",
                    [
                        ("Queue", q.name),
                        ("Position", str(i)),
                        ("Channel", c.name),
                        ("Uniqueid", c.uniqueid),
                        ("CallerIDNum", c.cid_num or "<unknown>"),
                        ("CallerIDName", c.cid_name or "<unknown>"),
                        ("ConnectedLineNum", c.conn_num or "<unknown>"),
                        ("ConnectedLineName", c.conn_name or "<unknown>"),
                        ("Wait", str(int(now - e.joined))),
                        ("Priority", str(e.prio)),
                        *s._with_id(aid),
                    ],
                )
                n += 1
        s.complete("QueueStatusComplete", aid, n)

    def _queue_order(self):
        # Asterisk walks its queue container in hash order; the captures show the
        # last-configured queue first, so the emulator lists queues in reverse config order.
        return list(reversed(list(self.pbx.queues.values())))

    async def a_queuesummary(self, s: Session, h: dict, f: Frame, aid: str | None) -> None:
        only = h.get("queue")
        s.success(aid, "Queue summary will follow", list_start=True)
        n = 0
        now = self.pbx.now()
        for q in self._queue_order():
            if only and q.name != only:
                continue
            logged = len(q.members)
            avail = len([m for m in q.members.values() if not m.paused and not m.in_call and m.status in (0, 1)])
            longest = max((int(now - e.joined) for e in q.callers), default=0)
            s.list_event(
                "QueueSummary",
                [
                    ("Queue", q.name),
                    ("LoggedIn", str(logged)),
                    ("Available", str(avail)),
                    ("Callers", str(len(q.callers))),
                    ("HoldTime", str(int(q.holdtime))),
                    ("TalkTime", str(int(q.talktime))),
                    ("LongestHoldTime", str(longest)),
                    *s._with_id(aid),
                ],
            )
            n += 1
        s.complete("QueueSummaryComplete", aid, n)

    async def a_coreshowchannels(self, s: Session, h: dict, f: Frame, aid: str | None) -> None:
        s.success(aid, "Channels will follow", list_start=True)
        n = 0
        now = self.pbx.now()
        for ch in list(self.pbx.channels.values()):
            d = int(now - ch.created)
            s.list_event(
                "CoreShowChannel",
                [
                    *s._with_id(aid),
                    *self.pbx.snap(ch),
                    ("Application", ch.app),
                    ("ApplicationData", ch.appdata),
                    ("Duration", f"{d // 3600:02d}:{d % 3600 // 60:02d}:{d % 60:02d}"),
                    ("BridgeId", ch.bridge.uid if ch.bridge else ""),
                ],
            )
            n += 1
        s.complete("CoreShowChannelsComplete", aid, n)

    async def a_mixmonitor(self, s: Session, h: dict, f: Frame, aid: str | None) -> None:
        name = h.get("channel", "")
        if not name:
            raise ActionError("No channel specified")
        ch = _chan(self.pbx, name)
        if ch is None:
            raise ActionError("No such channel")
        from .dialplan import mixmonitor

        mixmonitor(self.pbx, ch, h.get("file") or f"{ch.uniqueid}.wav", h.get("options", ""))
        s.write([("Response", "Success"), *s._with_id(aid)])

    async def a_stopmixmonitor(self, s: Session, h: dict, f: Frame, aid: str | None) -> None:
        name = h.get("channel", "")
        if not name:
            raise ActionError("No channel specified")
        ch = _chan(self.pbx, name)
        if ch is None:
            raise ActionError("No such channel")
        rec = ch.recording
        if rec is None or rec.stopped:
            raise ActionError("Could not stop monitoring channel")
        t = self.pbx.now()
        rec.stop(t)
        self.pbx.emit("MixMonitorStop", self.pbx.snap(ch), t=t)
        s.write([("Response", "Success"), *s._with_id(aid)])

    async def a_mixmonitormute(self, s: Session, h: dict, f: Frame, aid: str | None) -> None:
        direction = h.get("direction", "")
        if not direction:
            raise ActionError("No direction specified. Must be read, write or both")
        if direction.lower() not in ("read", "write", "both"):
            raise ActionError("Invalid direction specified. Must be read, write or both")
        name = h.get("channel", "")
        if not name:
            raise ActionError("No channel specified")
        state = h.get("state", "")
        if not state:
            raise ActionError("No state specified")
        ch = _chan(self.pbx, name)
        if ch is None:
            raise ActionError("No such channel")
        if ch.recording is None or ch.recording.stopped:
            raise ActionError("Cannot set mute flag")
        muted = is_true(state)
        t = self.pbx.now()
        ch.recording.set_muted(t, muted)
        self.pbx.emit(
            "MixMonitorMute", [*self.pbx.snap(ch), ("Direction", direction.lower()), ("State", "1" if muted else "0")], t=t
        )
        s.write([("Response", "Success"), *s._with_id(aid)])

    async def a_setvar(self, s: Session, h: dict, f: Frame, aid: str | None) -> None:
        var = h.get("variable", "")
        if not var:
            raise ActionError("No variable specified")
        name = h.get("channel", "")
        value = h.get("value", "")
        if name:
            ch = _chan(self.pbx, name)
            if ch is None:
                raise ActionError("No such channel")
            self.pbx.setvar(ch, var, value)
        else:
            self.pbx.globals[var] = value
        s.success(aid, "Variable Set")

    async def a_getvar(self, s: Session, h: dict, f: Frame, aid: str | None) -> None:
        var = h.get("variable", "")
        if not var:
            raise ActionError("No variable specified")
        name = h.get("channel", "")
        if name:
            ch = _chan(self.pbx, name)
            if ch is None:
                raise ActionError("No such channel")
            from .agi import AgiSession

            value = AgiSession.lookup(_Lookup(self.pbx, ch), var)  # type: ignore[arg-type]
        else:
            value = self.pbx.globals.get(var)
        s.success(aid, None, [("Variable", var), ("Value", value or "")])

    async def a_playdtmf(self, s: Session, h: dict, f: Frame, aid: str | None) -> None:
        name = h.get("channel", "")
        ch = _chan(self.pbx, name)
        if ch is None:
            raise ActionError(f"Channel '{name}' not found")
        digit = h.get("digit", "")
        if not digit:
            raise ActionError("No digit specified")
        self.pbx.play_dtmf(ch, digit[0])
        s.success(aid, "DTMF successfully queued")


class _Lookup:
    def __init__(self, pbx: "Pbx", ch) -> None:
        self.pbx = pbx
        self.ch = ch
