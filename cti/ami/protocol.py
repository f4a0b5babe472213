"""AMI wire framing: bytes in, header dicts out.

Why over 500 lines: the framer, its bounds (frame size, header count, resync at the next
CRLF CRLF) and the pre-decode event filter work on one buffer and are tested together.

Two layers:

* :class:`AmiFrameParser` — sans-IO. ``feed(bytes)`` then ``parse()`` returns the
  complete frames (``dict`` header → value) found so far. Frames end with
  ``\\r\\n\\r\\n``; the first line of a connection is the banner
  ``Asterisk Call Manager/x.y.z\\r\\n`` (no blank line after it).
* :class:`AmiProtocol` — the asyncio protocol (a subclass of panoramisk 1.4's
  ``AMIProtocol``) that feeds the parser from the socket and hands every frame to
  a callback, in slices that give the event loop back regularly.

Design points (see GUIDE §3 "AMI"):

* UTF-8 is decoded per *whole frame*, never per TCP read, with
  ``errors="replace"`` as the fallback so one bad byte costs one replacement
  character (counted in ``decode_errors``) and never the stream.
* Linear time. The delimiter search resumes where the previous one stopped
  (``_scan``), complete frames are cut with one C-level ``bytes.split`` per slice,
  and consumed bytes are compacted away only when they are at least half the
  buffer (amortised O(1) per byte). ``FrameStats.scanned_bytes`` and
  ``moved_bytes`` count that work so tests can prove there is no re-scanning.
* Cheap noise filter before decoding: an ``Event: Name`` frame whose name is not
  consumed (VarSet, Newexten, AGIExec*, RTCP*, DeviceStateChange, ...) is
  counted and dropped by looking at its first line's bytes. Responses are never
  dropped, nor events carrying an ActionID listed in ``keep_action_ids`` (the
  pending list actions: their ``...Complete`` events are not consumed events).
* Bounded (issue 12). A frame longer than ``max_frame_bytes`` is dropped: once
  that many bytes are buffered with no ``\\r\\n\\r\\n`` the parser switches to
  *discard mode* and keeps only the last 3 bytes while it looks for the next
  delimiter, then resyncs there: memory stays O(``max_frame_bytes``) whatever
  the peer sends. A frame with more than ``max_headers`` lines is dropped
  without being decoded. Both are counted in :class:`FrameStats` (and per
  reason + first line in ``FrameStats.dropped_by_type``, a bounded table) and
  logged once per frame with the frame's first line (``Event: Name`` /
  ``Response: ...``), at most ``_LOG_PER_TYPE`` warnings per type (then DEBUG),
  so a flood cannot flood the log. Decode errors are logged the same way.
"""

from __future__ import annotations

import asyncio
from collections import deque
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from panoramisk.ami_protocol import AMIProtocol

from callcore.loopwatch import FRAME_CLOCK
from cti.ami.events import CONSUMED_EVENTS

log = logging.getLogger(__name__)

DELIMITER = b"\r\n\r\n"
BANNER_PREFIX = b"Asterisk Call Manager/"
_EVENT_PREFIX = b"Event: "
_ACTION_ID = b"ActionID: "

#: bytes of input handled per ``parse()`` call by :class:`AmiProtocol`
PARSE_CHUNK = 64 * 1024
#: compact the buffer only once this many consumed bytes sit in front of it
_COMPACT_MIN = 64 * 1024
#: a banner line longer than this is not a banner
_BANNER_MAX = 256
#: default cap on one frame (bytes, delimiter excluded); real frames are < 64 KiB
MAX_FRAME_BYTES = 1024 * 1024
#: default cap on the lines (headers) of one frame; ``Command`` output rarely passes a few hundred
MAX_HEADERS = 4096
#: warnings logged per (reason, first line) before the rest go to DEBUG
_LOG_PER_TYPE = 3
#: the first line of a dropped frame is reported cut to this many bytes
_TYPE_MAX = 80
#: distinct (reason, first line) keys kept in ``FrameStats.dropped_by_type``
_TYPES_MAX = 256


@dataclass(slots=True)
class FrameStats:
    """Counters of the AMI reader (shared by every connection of one client)."""

    bytes_in: int = 0
    #: socket reads (``data_received`` calls)
    reads: int = 0
    #: complete frames cut from the stream (kept + dropped; the banner excluded)
    frames: int = 0
    #: events dropped by the name filter without being decoded
    dropped_noise: int = 0
    #: frames that passed the filter but have no typed class (counted by the client)
    unknown_events: int = 0
    #: frames that were not valid UTF-8 (decoded with replacement characters)
    decode_errors: int = 0
    #: bytes examined by delimiter searches and splits (work, for linearity tests)
    scanned_bytes: int = 0
    #: bytes moved by buffer compaction (work, for linearity tests)
    moved_bytes: int = 0
    #: times the protocol gave the loop back before its backlog was drained
    slices_yielded: int = 0
    #: frames dropped because they were longer than ``max_frame_bytes``
    oversized_frames: int = 0
    #: bytes thrown away with those frames
    oversized_bytes: int = 0
    #: frames dropped because they had more than ``max_headers`` lines
    too_many_headers: int = 0
    #: Responses whose ActionID matches no pending action (counted by the client)
    orphan_responses: int = 0
    #: ``"oversized Event: Foo"`` → count (bounded to ``_TYPES_MAX`` keys + one "(other)")
    dropped_by_type: dict[str, int] = field(default_factory=dict)


def parse_headers(text: str) -> dict[str, str]:
    """``Key: value`` lines of one decoded frame → dict.

    Fast path: one ``dict()`` over ``line.split(": ", 1)`` (measured faster than
    ``map(methodcaller)`` or a regex on CPython 3.11). Falls back to :func:`_parse_slow`
    for the rare frames with repeated headers (``Output`` of ``Command``,
    ``ChanVariable``...), lines without ``": "`` or stray blank lines.
    """
    return _headers_of(text.split("\r\n"))


def _headers_of(lines: list[str]) -> dict[str, str]:
    """:func:`parse_headers` on a frame already split into lines."""
    try:
        headers = dict([line.split(": ", 1) for line in lines])
    except ValueError:  # a line without ": "
        return _parse_slow(lines)
    if len(headers) != len(lines):  # a repeated header
        return _parse_slow(lines)
    return headers


def _parse_slow(lines: Iterable[str]) -> dict[str, str]:
    """Repeated headers are joined with ``\\n`` (a value can never hold a newline);
    lines that are not ``Key: value`` (old ``Response: Follows`` bodies) go to ``Output``."""
    headers: dict[str, str] = {}
    for line in lines:
        if not line or line == "--END COMMAND--":
            continue
        key, sep, value = line.partition(": ")
        if not sep:
            if line.endswith(":") and " " not in line:
                key, value = line[:-1], ""
            else:
                key, value = "Output", line
        if key in headers:
            headers[key] = headers[key] + "\n" + value
        else:
            headers[key] = value
    return headers


class AmiFrameParser:
    """Incremental AMI frame splitter with a noise filter (sans-IO).

    ``keep_action_ids`` is a live set of ActionIDs (bytes) whose events must
    survive the noise filter; the owner adds/removes ids while parsing runs.
    """

    __slots__ = (
        "_buf",
        "_pos",
        "_scan",
        "_banner_done",
        "banner",
        "version",
        "_consumed",
        "keep_action_ids",
        "stats",
        "max_frame_bytes",
        "max_headers",
        "_discarding",
    )

    def __init__(
        self,
        consumed_events: Iterable[str] = CONSUMED_EVENTS,
        *,
        keep_action_ids: set[bytes] | None = None,
        stats: FrameStats | None = None,
        max_frame_bytes: int = MAX_FRAME_BYTES,
        max_headers: int = MAX_HEADERS,
    ) -> None:
        if max_frame_bytes < 16 or max_headers < 1:
            raise ValueError("max_frame_bytes must be >= 16 and max_headers >= 1")
        self.max_frame_bytes = max_frame_bytes
        self.max_headers = max_headers
        #: True while the tail of an oversized frame is being skipped
        self._discarding = False
        self._buf = bytearray()
        self._pos = 0  # start of the unconsumed bytes
        self._scan = 0  # no delimiter starts in [_pos, _scan - 3)
        self._banner_done = False
        self.banner: str | None = None
        self.version: str | None = None
        self._consumed = frozenset(name.encode("utf-8") for name in consumed_events)
        self.keep_action_ids: set[bytes] = keep_action_ids if keep_action_ids is not None else set()
        self.stats = stats if stats is not None else FrameStats()

    # ------------------------------------------------------------------ input
    def feed(self, data: bytes) -> None:
        self._buf += data
        self.stats.bytes_in += len(data)

    @property
    def backlog(self) -> int:
        """Bytes received and not consumed yet (an incomplete frame, or frames not parsed yet)."""
        return len(self._buf) - self._pos

    # ----------------------------------------------------------------- output
    def parse(self, max_bytes: int | None = None) -> list[dict[str, str]] | None:
        """Cut, filter and decode the complete frames in (about) the next ``max_bytes``.

        Returns ``None`` when no complete frame is buffered (more input needed),
        otherwise the kept frames in order (possibly an empty list when every
        frame of the slice was noise). A frame longer than ``max_bytes`` is still
        returned whole.
        """
        buf = self._buf
        if not self._banner_done and not self._read_banner():
            return None
        if self._discarding and not self._skip_oversized():
            return None
        pos = self._pos
        size = len(buf)
        if pos >= size:
            return None
        stats = self.stats
        lo = max(pos, self._scan - 3)
        limit = size if max_bytes is None else min(size, pos + max_bytes)
        end = buf.rfind(DELIMITER, lo, limit) if lo < limit else -1
        if end >= 0:
            stats.scanned_bytes += limit - end
        else:
            stats.scanned_bytes += max(0, limit - lo)
            if limit < size:  # one frame longer than the slice: look further
                lo2 = max(lo, limit - 3)
                end = buf.find(DELIMITER, lo2)
                stats.scanned_bytes += (end if end >= 0 else size) - lo2
            if end < 0:
                self._scan = size
                if size - pos > self.max_frame_bytes:
                    self._start_discard()
                return None
        stats.scanned_bytes += end - pos  # the split below
        chunk = bytes(buf[pos:end])
        self._pos = self._scan = end + 4
        self._compact()
        return self._frames(chunk.split(DELIMITER))

    def _frames(self, raw_frames: list[bytes]) -> list[dict[str, str]]:
        consumed = self._consumed
        keep = self.keep_action_ids
        out: list[dict[str, str]] = []
        append = out.append
        max_frame = self.max_frame_bytes
        max_crlf = self.max_headers - 1  # CRLFs inside a frame = lines - 1
        dropped = bad = empty = 0
        max_lines = self.max_headers
        for frame in raw_frames:
            if frame.startswith(_EVENT_PREFIX):  # the usual frame: tested first (issue 18)
                nl = frame.find(b"\r\n", 7)
                name = frame[7:nl] if nl >= 0 else frame[7:]
                if name not in consumed and not (keep and _has_action_id(frame, keep)):
                    dropped += 1  # the 63 % of frames that are noise: never decoded
                    continue
            elif not frame:
                empty += 1
                continue
            elif frame[0] == 13 or frame[0] == 10:  # a stray CRLF between frames (rare)
                frame = frame.strip(b"\r\n")
                if not frame:
                    empty += 1
                    continue
                if self._is_noise(frame):
                    dropped += 1
                    continue
            if len(frame) > max_frame:  # a whole oversized frame inside one slice
                self.stats.oversized_frames += 1
                self.stats.oversized_bytes += len(frame)
                self._note("oversized", frame, f"{len(frame)} bytes > max_frame_bytes={max_frame}")
                continue
            try:
                text = frame.decode("utf-8")
            except UnicodeDecodeError as exc:
                # the line count is checked before the replacement decode, as for a valid frame
                # below: a frame with too many lines is dropped, not counted as a decode error
                crlf = frame.count(b"\r\n")
                if crlf > max_crlf:
                    self.stats.too_many_headers += 1
                    self._note("too many headers", frame, f"{crlf + 1} lines > max_headers={self.max_headers}")
                    continue
                bad += 1
                self._note("decode error", frame, f"invalid UTF-8 at byte {exc.start}, decoded with replacement characters")
                text = frame.decode("utf-8", "replace")
            # one split per frame, shared by the line bound and the header parser (was a
            # separate ``bytes.count`` pass over every kept frame)
            lines = text.split("\r\n")
            n = len(lines)
            if n > max_lines:
                self.stats.too_many_headers += 1
                self._note("too many headers", frame, f"{n} lines > max_headers={self.max_headers}")
                continue
            # _headers_of, inlined (one call less per kept frame)
            try:
                headers = dict([line.split(": ", 1) for line in lines])
            except ValueError:  # a line without ": "
                headers = _parse_slow(lines)
            else:
                if len(headers) != n:  # a repeated header
                    headers = _parse_slow(lines)
            append(headers)
        stats = self.stats
        stats.frames += len(raw_frames) - empty
        stats.dropped_noise += dropped
        stats.decode_errors += bad
        return out

    def _is_noise(self, frame: bytes) -> bool:
        """The noise filter of :meth:`_frames` for one (non-empty, stripped) frame."""
        if not frame.startswith(_EVENT_PREFIX):
            return False
        nl = frame.find(b"\r\n", 7)
        name = frame[7:nl] if nl >= 0 else frame[7:]
        keep = self.keep_action_ids
        return name not in self._consumed and not (keep and _has_action_id(frame, keep))

    # ---------------------------------------------------------- bounded input
    def _start_discard(self) -> None:
        """``max_frame_bytes`` buffered with no delimiter: drop this frame, keep the stream."""
        self.stats.oversized_frames += 1
        head = bytes(self._buf[self._pos : self._pos + _TYPE_MAX + 2])
        self._note("oversized", head, f"no frame end within max_frame_bytes={self.max_frame_bytes}, skipping to the next frame")
        self._discarding = True
        self._skip_oversized()

    def _skip_oversized(self) -> bool:
        """Throw away the oversized frame's bytes up to and including the next delimiter.

        Returns True once resynced (parsing resumes at the next frame), False while
        the delimiter has not arrived (only the last 3 bytes are kept, in case the
        delimiter is split across reads).
        """
        buf = self._buf
        pos = self._pos
        lo = max(pos, self._scan - 3)
        end = buf.find(DELIMITER, lo)
        self.stats.scanned_bytes += (end if end >= 0 else len(buf)) - lo
        if end < 0:
            keep = min(3, len(buf) - pos)
            self.stats.oversized_bytes += len(buf) - pos - keep
            del buf[: len(buf) - keep]
            self._pos = 0
            self._scan = len(buf)
            return False
        self.stats.oversized_bytes += end + 4 - pos
        self._pos = self._scan = end + 4
        self._discarding = False
        self._compact()
        return True

    def _note(self, reason: str, frame: bytes, detail: str) -> None:
        """Count a dropped/damaged frame by (reason, first line) and log it, capped per type."""
        nl = frame.find(b"\r\n", 0, _TYPE_MAX)
        first = bytes(frame[: nl if nl >= 0 else _TYPE_MAX]).decode("utf-8", "replace")
        key = f"{reason} {first}"
        counts = self.stats.dropped_by_type
        if key not in counts and len(counts) >= _TYPES_MAX:  # hostile input varies the first line
            key = f"{reason} (other)"
        n = counts[key] = counts.get(key, 0) + 1
        if n <= _LOG_PER_TYPE:
            more = " (further ones of this type are logged at DEBUG)" if n == _LOG_PER_TYPE else ""
            log.warning("AMI frame dropped/damaged: %s (%s): %s%s", reason, first, detail, more)
        else:
            log.debug("AMI frame %s (%s): %s", reason, first, detail)

    # -------------------------------------------------------------- internals
    def _read_banner(self) -> bool:
        """Consume the ``Asterisk Call Manager/x.y.z`` line if the stream starts with it.

        Returns False while too few bytes are buffered to tell.
        """
        buf = self._buf
        pos = self._pos
        avail = len(buf) - pos
        if avail <= 0:
            return False
        n = min(avail, len(BANNER_PREFIX))
        if buf[pos : pos + n] != BANNER_PREFIX[:n]:
            self._banner_done = True  # no banner (a proxy, a test stream): frames only
            return True
        if avail < len(BANNER_PREFIX):
            return False
        nl = buf.find(b"\r\n", pos, pos + _BANNER_MAX)
        if nl < 0:
            if avail >= _BANNER_MAX:
                self._banner_done = True  # not a banner line after all
                return True
            return False
        self.banner = bytes(buf[pos:nl]).decode("utf-8", "replace")
        self.version = self.banner[len(BANNER_PREFIX) :].strip()
        self._pos = self._scan = nl + 2
        self._banner_done = True
        return True

    def _compact(self) -> None:
        buf = self._buf
        pos = self._pos
        if pos >= len(buf):
            buf.clear()
            self._pos = self._scan = 0
        elif pos >= _COMPACT_MIN and pos * 2 >= len(buf):
            self.stats.moved_bytes += len(buf) - pos
            del buf[:pos]
            self._scan -= pos
            self._pos = 0


def _has_action_id(frame: bytes, keep: set[bytes]) -> bool:
    """Does this (undecoded) frame carry an ``ActionID`` header listed in ``keep``?"""
    i = frame.find(_ACTION_ID)
    while i >= 0:
        if i == 0 or frame[i - 1 : i] == b"\n":
            start = i + len(_ACTION_ID)
            end = frame.find(b"\r\n", start)
            if (frame[start:end] if end >= 0 else frame[start:]) in keep:
                return True
        i = frame.find(_ACTION_ID, i + 1)
    return False


FrameHandler = Callable[[dict[str, str]], None]


class AmiProtocol(AMIProtocol):
    """asyncio protocol for one AMI connection, built on panoramisk 1.4's ``AMIProtocol``.

    Kept from panoramisk: the ``asyncio.Protocol`` plumbing of ``connection_made``
    (``transport``, ``closed``, ``version``, ``log``).

    Replaced, with the upstream cause:

    * ``data_received`` — panoramisk 1.4 ``ami_protocol.py``
      ``AMIProtocol.data_received`` does ``data.decode(encoding, 'ignore')`` on
      every TCP chunk (``encoding`` defaults to ascii): a UTF-8 name split across
      two reads, or any non-ASCII byte, is silently lost. It also re-joins and
      re-splits its backlog string per chunk and builds a ``Message`` for every
      frame, noise included. Here: :class:`AmiFrameParser` (bytes, whole-frame
      UTF-8 decoding, noise filter), processed in time-bounded slices.
    * ``connection_lost``/``close`` — upstream hands unanswered actions to
      ``Manager.awaiting_actions`` to be re-sent after a reconnect (a second
      Originate is a second phone call) and needs a ``Manager`` factory. Here the
      owner's ``on_lost`` callback decides (callcore fails them).
    * ``send``/``handle_message`` — upstream matching lives in the client
      (``cti.ami.client``), which needs typed list answers.
    """

    def __init__(
        self,
        on_frame: FrameHandler,
        on_lost: Callable[["AmiProtocol", BaseException | None], None] | None = None,
        *,
        consumed_events: Iterable[str] = CONSUMED_EVENTS,
        keep_action_ids: set[bytes] | None = None,
        stats: FrameStats | None = None,
        slice_seconds: float = 0.02,
        parse_chunk: int = PARSE_CHUNK,
        max_frame_bytes: int = MAX_FRAME_BYTES,
        max_headers: int = MAX_HEADERS,
    ) -> None:
        self._on_frame = on_frame
        self._on_lost = on_lost
        self.parser = AmiFrameParser(
            consumed_events,
            keep_action_ids=keep_action_ids,
            stats=stats,
            max_frame_bytes=max_frame_bytes,
            max_headers=max_headers,
        )
        self.stats = self.parser.stats
        self.slice_seconds = slice_seconds
        self.parse_chunk = parse_chunk
        self.transport: asyncio.Transport | None = None
        self.closed = True
        self._stopped = False
        self._paused = False
        self._drain_handle: asyncio.Handle | None = None
        self._pending: deque[memoryview] = deque()  # received, not yet fed to the parser
        self._read_at: deque[float] = deque()  # perf_counter of each pending read (issue 18: pop latency)
        self._fed_at = 0.0  # read time of the newest data fed to the parser
        self._loop: asyncio.AbstractEventLoop | None = None
        #: resolved (with the exception or None) when the connection is gone
        self.lost: asyncio.Future[BaseException | None] | None = None

    # ------------------------------------------------------------- lifecycle
    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # type: ignore[override]
        super().connection_made(transport)  # panoramisk: transport, closed=False, version, log
        self.log = log
        self._loop = asyncio.get_running_loop()
        self.lost = self._loop.create_future()

    def connection_lost(self, exc: BaseException | None) -> None:  # type: ignore[override]
        self._stop()
        self.closed = True
        if self.parser.backlog:
            log.debug("AMI connection closed with %d unparsed bytes (an incomplete frame)", self.parser.backlog)
        if self.lost is not None and not self.lost.done():
            self.lost.set_result(exc)
        if self._on_lost is not None:
            on_lost, self._on_lost = self._on_lost, None
            on_lost(self, exc)

    def close(self) -> None:  # type: ignore[override]
        """Stop handing out frames and close the socket (``connection_lost`` follows)."""
        self._stop()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def _stop(self) -> None:
        self._stopped = True
        if self._drain_handle is not None:
            self._drain_handle.cancel()
            self._drain_handle = None

    # ------------------------------------------------------------------- I/O
    def send(self, data: bytes) -> None:  # type: ignore[override]
        """Write one encoded action (see ``Action.to_bytes``)."""
        if self.transport is None or self.transport.is_closing() or self._stopped:
            raise ConnectionError("AMI transport is closed")
        self.transport.write(data)

    def data_received(self, data: bytes) -> None:  # type: ignore[override]
        if self._stopped:
            return
        self.stats.reads += 1
        # Keep the read as is and feed the parser one ``parse_chunk`` at a time from
        # ``_drain``: copying a 100 MB burst into the parser's buffer in this callback
        # (and compacting it later) blocked the loop for ~77 ms (benchmarks/README.md).
        self._pending.append(memoryview(data))
        self._read_at.append(time.perf_counter())
        if self._drain_handle is None:
            self._drain()

    def _feed_some(self) -> bool:
        """Move up to ``parse_chunk`` bytes of received data into the parser."""
        if not self._pending:
            return False
        budget = self.parse_chunk
        pending = self._pending
        while pending and budget > 0:
            view = pending[0]
            self._fed_at = self._read_at[0]
            if len(view) <= budget:
                pending.popleft()
                self._read_at.popleft()
                piece = view
            else:
                piece, pending[0] = view[:budget], view[budget:]
            self.parser.feed(piece)
            budget -= len(piece)
        return True

    def _drain(self) -> None:
        """Hand out frames until the backlog is empty or the time slice is used up.

        When the slice is used up, reading is paused (TCP backpressure to
        Asterisk) and the rest is scheduled with ``call_soon`` so other tasks
        run in between; reading resumes once the backlog is drained.
        """
        self._drain_handle = None
        parser = self.parser
        on_frame = self._on_frame
        deadline = time.perf_counter() + self.slice_seconds
        try:
            self._drain_slice(parser, on_frame, deadline)
        finally:
            FRAME_CLOCK.at = 0.0  # what is published outside frame handling did not come from AMI

    def _drain_slice(self, parser: "AmiFrameParser", on_frame: Any, deadline: float) -> None:
        while not self._stopped:
            if parser.backlog < self.parse_chunk:
                self._feed_some()
            frames = parser.parse(self.parse_chunk)
            if frames is None:  # no complete frame buffered: more input, if any is pending
                if self._feed_some():
                    continue
                break
            # the newest read fed so far holds the end of every frame parsed now (issue 18)
            FRAME_CLOCK.at = self._fed_at
            for headers in frames:
                on_frame(headers)
                if self._stopped:
                    return
            if time.perf_counter() >= deadline:
                self.stats.slices_yielded += 1
                if not self._paused and self.transport is not None:
                    self.transport.pause_reading()
                    self._paused = True
                assert self._loop is not None
                self._drain_handle = self._loop.call_soon(self._drain)
                return
        if self._paused and not self._stopped and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
