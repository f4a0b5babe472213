"""Database access for users, API keys and revoked tokens."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import delete, select

from auth.models import ApiKeyRow, RevokedTokenRow, UserRow


def user_dict(row: UserRow) -> dict[str, Any]:
    return {
        "id": row.id, "name": row.name, "role": row.role, "queues": list(row.queues or []), "teams": list(row.teams or []),
        "agent_id": row.agent_id, "disabled": row.disabled,
        "created_at": row.created_at.isoformat() if row.created_at else None,
    }


def key_dict(row: ApiKeyRow) -> dict[str, Any]:
    return {
        "id": row.id, "name": row.name, "role": row.role, "scopes": row.scopes, "queues": list(row.queues or []),
        "created_by": row.created_by, "created_at": row.created_at.isoformat() if row.created_at else None,
        "revoked": row.revoked_at is not None,
    }


class AuthRepository:
    def __init__(self, sessionmaker: Any) -> None:
        self._sm = sessionmaker

    # ---- users
    async def get_user(self, user_id: str) -> UserRow | None:
        async with self._sm() as s:
            return await s.get(UserRow, user_id)

    async def list_users(self) -> list[dict[str, Any]]:
        async with self._sm() as s:
            return [user_dict(r) for r in (await s.scalars(select(UserRow).order_by(UserRow.id))).all()]

    async def create_user(self, **fields: Any) -> dict[str, Any] | None:
        async with self._sm() as s, s.begin():
            if await s.get(UserRow, fields["id"]) is not None:
                return None
            row = UserRow(**fields)
            s.add(row)
        return user_dict(row)

    async def update_user(self, user_id: str, **fields: Any) -> dict[str, Any] | None:
        async with self._sm() as s, s.begin():
            row = await s.get(UserRow, user_id)
            if row is None:
                return None
            for k, v in fields.items():
                setattr(row, k, v)
        return user_dict(row)

    async def delete_user(self, user_id: str) -> bool:
        async with self._sm() as s, s.begin():
            return (await s.execute(delete(UserRow).where(UserRow.id == user_id))).rowcount > 0

    async def set_password_hash(self, user_id: str, password_hash: str) -> None:
        await self.update_user(user_id, password_hash=password_hash)

    # ---- API keys
    async def add_key(self, **fields: Any) -> dict[str, Any]:
        async with self._sm() as s, s.begin():
            row = ApiKeyRow(**fields)
            s.add(row)
        return key_dict(row)

    async def list_keys(self) -> list[dict[str, Any]]:
        async with self._sm() as s:
            return [key_dict(r) for r in (await s.scalars(select(ApiKeyRow).order_by(ApiKeyRow.created_at))).all()]

    async def active_keys(self) -> list[ApiKeyRow]:
        async with self._sm() as s:
            return list((await s.scalars(select(ApiKeyRow).where(ApiKeyRow.revoked_at.is_(None)))).all())

    async def revoke_key(self, key_id: str) -> dict[str, Any] | None:
        async with self._sm() as s, s.begin():
            row = await s.get(ApiKeyRow, key_id)
            if row is None:
                return None
            if row.revoked_at is None:
                row.revoked_at = datetime.now(timezone.utc)
        return key_dict(row)

    # ---- revoked tokens
    async def revoke_token(self, jti: str, expires_at: float) -> None:
        async with self._sm() as s, s.begin():
            if await s.get(RevokedTokenRow, jti) is None:
                s.add(RevokedTokenRow(jti=jti, expires_at=expires_at))

    async def revoked_tokens(self, now: float) -> dict[str, float]:
        async with self._sm() as s, s.begin():
            await s.execute(delete(RevokedTokenRow).where(RevokedTokenRow.expires_at < now))
            rows = (await s.scalars(select(RevokedTokenRow))).all()
            return {r.jti: r.expires_at for r in rows}
