"""Who may call the identity API: admins may do anything, every user may read themselves."""

from __future__ import annotations

from novalet import policy
from novalet.api.handler import ApiRequest
from novalet.identity.tokens import TokenData, TokenNotValid


def require_token(req: ApiRequest) -> TokenData:
    """The caller's token, of any scope; 401 when the request carries none."""
    if req.token is None:
        raise TokenNotValid()
    return req.token


def require_admin(req: ApiRequest) -> None:
    policy.enforce(req.ctx, "identity:admin")


def require_self_or_admin(req: ApiRequest, user_id: str) -> None:
    if require_token(req).user_id != user_id:
        require_admin(req)
