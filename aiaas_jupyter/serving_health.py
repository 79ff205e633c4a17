"""Health checks of what the serving service knows: own deployments (readiness) and remote
endpoints (a quick GET), and the report :meth:`~.serving_service.ServingService.health_report`
returns. Apart from the service so the one check has one home and the service stays small.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from .errors import EndpointAuthError, EndpointError

if TYPE_CHECKING:  # pragma: no cover
    from .registry import Endpoint

#: seconds one health check may take
HEALTH_TIMEOUT = 2.0


@dataclass
class HealthReport:
    """What :meth:`~.serving_service.ServingService.health_report` found: this home's model server (None when not
    running; it holds the token, so callers that answer others use ``server_url``), its
    deployments with readiness, and the remote endpoints with their health."""

    server: Any
    deployments: list[tuple[dict, str]]
    endpoints: "list[tuple[Endpoint, str]]"

    @property
    def server_url(self) -> str | None:
        return self.server.url if self.server is not None else None


def remote_health(ep: "Endpoint", key_of: "Callable[[Endpoint], str | None] | None" = None) -> str:
    """A quick GET: v2 ``/v2/health/ready``, openai ``/models``, rest the URL (non-5xx = up).

    Without ``key_of`` (the default, and always from the Jupyter server) no credential of any
    kind is sent: a health check needs none, and the server must not hand a key to a URL it
    read from the registry. The kernel's own ``endpoints()`` passes the function that reads the
    endpoint's key (only a variable that fits the rule), to tell "key rejected" from "needs a key".
    """
    import httpx

    from .registry.endpoints_table import check_url
    from .serving_client.clients import bearer

    try:
        base = check_url(ep.url)  # a row written straight into the database may hold anything
    except EndpointError:
        return "invalid URL"
    url = {"v2": f"{base}/v2/health/ready", "openai": f"{base}/models"}.get(ep.protocol, base)
    headers = {}
    if key_of is not None:
        try:
            headers = bearer(key_of(ep)) if ep.api_key_env else {}
        except EndpointAuthError:  # not set, or a variable outside the rule: check without a key
            headers = {}
    try:
        response = httpx.get(url, headers=headers, timeout=HEALTH_TIMEOUT, follow_redirects=False)
    except httpx.TimeoutException:
        return "down (timeout)"
    except (httpx.HTTPError, httpx.InvalidURL):
        return "down (unreachable)"
    code = response.status_code
    if ep.protocol == "rest":
        return "up" if code < 500 else f"down ({code})"
    if code in (401, 403):
        return f"up, key rejected ({code})" if headers else f"up, needs a key ({code})"
    return "up" if response.is_success else f"down ({code})"
