"""Logging setup: human-readable by default, one JSON object per line with ``log_json``."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import datetime, timezone

_STD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for k, v in vars(record).items():
            if k not in _STD_ATTRS and not k.startswith("_"):
                out[k] = v if isinstance(v, (str, int, float, bool, type(None))) else repr(v)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


# --- security (issue 11): no secret, token or PIN in any log line -----------------------------
_REDACTIONS = (
    (re.compile(r"(?i)([?&](?:token|access_token|refresh_token|key|api_key|pin|password)=)[^&\s\"']+"), r"\1***"),
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1***"),
    (re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+"), "***jwt***"),
    (re.compile(r"\bcc_[0-9a-f]{8}_[A-Za-z0-9_-]{20,}"), "***apikey***"),
    (re.compile(r"""(?i)(["']?(?:pin|password|secret|token|refresh_token|access_token|csrf_token)["']?\s*[:=]\s*["']?)[^"',\s}&]+"""), r"\1***"),
)


def redact(text: str) -> str:
    """``text`` with tokens, API keys, PINs and passwords replaced by ``***``."""
    for pattern, repl in _REDACTIONS:
        text = pattern.sub(repl, text)
    return text


_factory_installed = False


def install_redaction() -> None:
    """Redact every log record of the process at creation (uvicorn's access log included: the
    websocket's ``?token=`` never reaches a handler in clear). Idempotent."""
    global _factory_installed
    if _factory_installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args, **kwargs) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a bad format string stays the logging module's problem
            return record
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, ()
        return record

    logging.setLogRecordFactory(factory)
    _factory_installed = True
# --- end security ---------------------------------------------------------------------------


def configure(level: str = "INFO", json_lines: bool = False) -> None:
    install_redaction()
    handler = logging.StreamHandler(sys.stderr)
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # uvicorn's access log is noisy at INFO for websocket-heavy desks
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
