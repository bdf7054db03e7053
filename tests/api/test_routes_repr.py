"""Every route of the app has a finite repr: bottle's Route.__repr__ walks closure chains (and once looped
forever on our endpoint closures, hanging pytest's failure reports and any debug log of a route)."""

from __future__ import annotations

from api.conftest import StateFactory
from cfsslpy.api.app import create_app


def test_every_route_repr_terminates(make_state: StateFactory) -> None:
    app = create_app(make_state())
    assert app.routes
    for route in app.routes:
        assert route.rule in repr(route)
