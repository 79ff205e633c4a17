"""The two shapes every route answers with: a JSON body, and ``ApiError`` (status + one line)
that the app turns into ``{"error": "..."}``. Shared by :mod:`.app` and :mod:`.admin_routes`."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from . import jsonio


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def json_response(obj: Any, status: int = 200, headers: dict | None = None) -> Response:
    return Response(jsonio.encode(obj), status, headers, media_type="application/json")
