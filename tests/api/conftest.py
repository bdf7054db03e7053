"""Fixtures for the API tests: a CA built at test time, ApiState factories, in-process clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import CA, RunCli, make_ca

from api.wsgi import Client, config_json
from cfsslpy.api.app import create_app
from cfsslpy.api.state import ApiState
from cfsslpy.config import Config
from cfsslpy.signer import LocalSigner, load_issuer


@pytest.fixture
def api_ca(run_cli: RunCli, tmp_path: Path) -> CA:
    return make_ca(run_cli, tmp_path / "api-ca")


StateFactory = Callable[..., ApiState]


@pytest.fixture
def make_state(api_ca: CA, tmp_path: Path) -> StateFactory:
    """``make_state(config=..., signer=True, **ApiState fields)``; config None = cfssl's default policy."""

    def _make(config: dict[str, Any] | None = None, signer: bool = True, **kw: Any) -> ApiState:
        cfg = Config.from_json(config) if config is not None else Config.default()
        local = LocalSigner(load_issuer(str(api_ca.cert), str(api_ca.key)), cfg.signing) if signer else None
        return ApiState(signer=local, policy=cfg.signing, config=cfg if config is not None else None, **kw)

    return _make


@pytest.fixture
def client_for() -> Iterator[Callable[..., Client]]:
    apps: list[Any] = []
    states: list[ApiState] = []

    def _client(state: ApiState, **kw: Any) -> Client:
        app = create_app(state, **kw)
        apps.append(app)
        states.append(state)
        return Client(app)

    yield _client
    for app in apps:
        app.metrics.close()
        app.close()
    for state in states:  # what serve keeps open for its lifetime; Python 3.13 warns about unclosed SQLite connections
        if state.db is not None:
            state.db.close()


@pytest.fixture
def client(make_state: StateFactory, client_for: Callable[[ApiState], Client]) -> Client:
    """The API with the test CA and :func:`config_json`."""
    return client_for(make_state(config_json()))
