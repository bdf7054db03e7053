"""The ``-db-config`` document (reference §4.4): ``{"driver": "sqlite3"|"postgres", "data_source": DSN}``.

Errors are cfssl's: 5200 ``could not read configuration file`` / ``failed to unmarshal configuration: …`` /
``invalid db configuration``; a driver we do not have is refused up front (cfssl: ``sql: unknown driver``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from cfsslpy.errors import Category, CfsslError, Reason, policy_error
from cfsslpy.gojson import JSONDecodeError, loads
from cfsslpy.inputs import Stdin, read_input

DRIVERS = ("sqlite3", "postgres")


@dataclass(frozen=True)
class DBConfig:
    driver: str
    data_source: str

    @classmethod
    def from_json(cls, data: bytes) -> DBConfig:
        try:
            obj = loads(data)
        except JSONDecodeError as exc:
            raise policy_error(f"failed to unmarshal configuration: {exc}") from None
        if not isinstance(obj, dict):
            raise policy_error("invalid db configuration")
        lowered = {k.lower(): v for k, v in obj.items()}
        driver = lowered.get("driver")
        source = lowered.get("data_source")
        if not isinstance(driver, str) or not isinstance(source, str) or not driver or not source:
            raise policy_error("invalid db configuration")
        if driver in ("postgresql", "pgx"):
            driver = "postgres"
        if driver not in DRIVERS:
            raise CfsslError(
                Category.CERT_STORE,
                Reason.UNKNOWN,
                f'unsupported database driver "{driver}" (supported: sqlite3, postgres)',
            )
        return cls(driver, source)

    @classmethod
    def load(cls, spec: str, *, stdin: Stdin | None = None, environ: Mapping[str, str] | None = None) -> DBConfig:
        """The ``-db-config`` file (a path, ``file:``/``env:``); a relative SQLite path is relative to the
        current directory, as in cfssl."""
        try:
            data = read_input(spec, stdin=stdin, environ=environ)
        except Exception:
            raise policy_error("could not read configuration file") from None
        return cls.from_json(data)

    def redacted(self) -> str:
        """The data source for messages: a PostgreSQL URL without its password."""
        if self.driver != "postgres" or "@" not in self.data_source:
            return self.data_source
        head, _, tail = self.data_source.rpartition("@")
        scheme, sep, userinfo = head.partition("://")
        user = userinfo.split(":", 1)[0]
        return f"{scheme}{sep}{user}:***@{tail}" if sep else "***@" + tail
