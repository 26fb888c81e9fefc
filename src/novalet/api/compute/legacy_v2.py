"""Nova's legacy /v2 endpoint: every v2.1 route again under /v2, without microversions.

Nova serves its v2.1 API at /v2 too, for clients written against the v2 API:
there the microversion headers are ignored (every request runs at the base
version) and none are sent back. The routes here are the v2.1 table's, each with
the same handler behind an edge that does just that (handler.Front.legacy_v2).
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from novalet.api import errors
from novalet.api.compute import versions
from novalet.api.handler import COMPUTE, Front, endpoint

LEGACY = Front(COMPUTE.name, errors.nova_body, microversioned=True, legacy_v2=True)
V21, V2 = "/v2.1", "/v2"


def routes(v21_routes: list[BaseRoute]) -> list[BaseRoute]:
    """The /v2 twins of the /v2.1 routes (its version document answers v2.0)."""
    twins: list[BaseRoute] = [
        Route(V2, endpoint(LEGACY, versions.show_v2, auth=False), methods=["GET"]),
        Route(V2 + "/", endpoint(LEGACY, versions.show_v2, auth=False), methods=["GET"])]
    for route in v21_routes:
        if not isinstance(route, Route) or not route.path.startswith(V21 + "/"):
            continue
        run = route.endpoint
        if run.handler is versions.show:  # type: ignore[attr-defined]
            continue  # v2 has its own version document
        twins.append(Route(V2 + route.path[len(V21):],
                           endpoint(LEGACY, run.handler, auth=run.auth),  # type: ignore[attr-defined]
                           methods=sorted((route.methods or set()) - {"HEAD"})))
    return twins
