"""The ``-db-config`` document (reference §4.4): ``{"driver": "sqlite3"|"postgres", "data_source": DSN}``.

Errors are cfssl's: 5200 ``could not read configuration file`` / ``failed to unmarshal configuration: …`` /
``invalid db configuration``; a driver we do not have is refused up front (cfssl: ``sql: unknown driver``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from cfsslpy.errors import Category, CfsslError, Reason, policy_error
from cfsslpy.golang.decode import STRING, UnmarshalTypeError, decode, go_struct
from cfsslpy.golang.json import JSONDecodeError, loads
from cfsslpy.inputs import Stdin, read_input

DRIVERS = ("sqlite3", "postgres")
# a password option of a PostgreSQL data source and its value (quoted as lib/pq quotes it, or up to the next
# space or "&"), for :meth:`DBConfig.redacted`
_PASSWORD_OPTION = re.compile(r"(password\s*=\s*)(?:'(?:[^'\\]|\\.)*'?|[^\s&]*)", re.IGNORECASE)


@go_struct("dbconf.DBConfig", {"driver": STRING, "data_source": STRING})
@dataclass(frozen=True)
class DBConfig:
    driver: str = ""
    data_source: str = ""

    @classmethod
    def from_json(cls, data: bytes) -> DBConfig:
        try:
            config = decode(cls, loads(data))
        except UnmarshalTypeError:
            # cfssl words a wrong type as "failed to unmarshal configuration: json: cannot unmarshal ...";
            # cfsslpy has always answered it as it answers missing fields (the tests pin this).
            raise policy_error("invalid db configuration") from None
        except JSONDecodeError as exc:
            raise policy_error(f"failed to unmarshal configuration: {exc}") from None
        if not config.driver or not config.data_source:
            raise policy_error("invalid db configuration")
        driver = "postgres" if config.driver in ("postgresql", "pgx") else config.driver
        if driver not in DRIVERS:
            raise CfsslError(
                Category.CERT_STORE,
                Reason.UNKNOWN,
                f'unsupported database driver "{driver}" (supported: sqlite3, postgres)',
            )
        return cls(driver, config.data_source)

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
        """The data source for messages: a PostgreSQL data source without its password, whether in a URL's
        user information or as a ``password=`` (or ``sslpassword=``) option, in a URL query or a key/value
        string (``host=db password='a b'``: serve logs the data source at startup)."""
        if self.driver != "postgres":
            return self.data_source
        text = self.data_source
        if "@" in text:
            head, _, tail = text.rpartition("@")
            scheme, sep, userinfo = head.partition("://")
            user = userinfo.split(":", 1)[0]
            text = f"{scheme}{sep}{user}:***@{tail}" if sep else "***@" + tail
        return _PASSWORD_OPTION.sub(r"\1***", text)
