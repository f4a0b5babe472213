"""Caller-number masking for roles listed in ``mask_numbers_for_roles`` (pure).

``010-1234-5678`` → ``010****5678``: the first 3 and last 4 digits stay, so a desk can still
tell callers apart. Applied to pops and call views (websocket and REST) for those roles.
"""

from __future__ import annotations

from typing import Any

NUMBER_KEYS = frozenset({"caller_num", "caller", "number", "phone", "phones", "connected_num", "caller_id_num"})


def mask_number(value: Any) -> Any:
    if not isinstance(value, str) or len(value) < 8:
        return "****" if isinstance(value, str) and value else value
    return value[:3] + "*" * (len(value) - 7) + value[-4:]


def mask_numbers(obj: Any) -> Any:
    """A copy of ``obj`` (dicts/lists, any depth) with every phone-number field masked."""
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if k in NUMBER_KEYS:
                out[k] = [mask_number(x) for x in v] if isinstance(v, list) else mask_number(v)
            else:
                out[k] = mask_numbers(v)
        return out
    if isinstance(obj, list):
        return [mask_numbers(v) for v in obj]
    return obj
