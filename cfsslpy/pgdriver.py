"""PostgreSQL for the certdb: cfssl's data sources (lib/pq syntax) opened with pg8000, and its schema migrations.

pg8000 is pure Python, so the single-file executable carries it; it is imported only when a PostgreSQL
database is configured. Its DB-API connection is what :class:`cfsslpy.certdb.CertDB` drives: ``format``
parameters (``%s``), autocommit off (every statement runs in a transaction that ``commit``/``rollback``
ends), ``cursor().rowcount`` after an UPDATE/INSERT. Parameters are sent untyped, so the server infers the
column type: ``bytes`` become ``bytea``, JSON text becomes ``jsonb``, aware datetimes ``timestamptz``.

**Data sources** are what cfssl's driver, lib/pq, accepts:

* URLs ``postgres://user:password@host:port/dbname?sslmode=verify-full&sslrootcert=/path/ca.pem``
  (``postgresql://`` too; user, password and dbname percent-decoded; query keys as below);
* key/value strings ``host=db port=5432 user=cfssl password='a b' dbname=certs sslmode=require``
  (values single-quoted with ``\\`` escapes when they hold spaces).

A ``host`` starting with ``/`` is a Unix socket directory (``<dir>/.s.PGSQL.<port>``). Unset keys come from
``PGHOST``, ``PGPORT``, ``PGUSER``, ``PGPASSWORD``, ``PGDATABASE``, ``PGSSLMODE``, ``PGSSLROOTCERT``,
``PGSSLCERT``, ``PGSSLKEY``, ``PGCONNECT_TIMEOUT``, then lib/pq's defaults (``localhost:5432``, user =
the login name, dbname = user). Keys lib/pq does not know are sent to the server as run-time parameters
(``search_path=certdb``), as lib/pq does.

**TLS** (``sslmode``; lib/pq's default is ``require``): ``disable`` and ``allow`` connect in clear; ``prefer``
tries TLS and falls back; ``require`` encrypts without checking the server certificate (lib/pq and libpq:
unless a ``sslrootcert`` file exists, then it is checked as for ``verify-ca``); ``verify-ca`` checks the chain
against ``sslrootcert`` (default ``~/.postgresql/root.crt``, else the system roots); ``verify-full`` checks
the chain and that the certificate names ``host``. ``sslcert``/``sslkey`` present a client certificate.
Unix sockets never use TLS (libpq ignores ``sslmode`` there; the server refuses TLS on them).

``connect_timeout`` (seconds) bounds the TCP connection and the startup/authentication exchange; after that
the socket blocks without a limit, as lib/pq's does.

**Errors** are :class:`~cfsslpy.errors.CfsslError` 11000 with the driver's text (``dial tcp 127.0.0.1:5432:
connect: connection refused``, ``password authentication failed for user "cfssl"``). A password never
appears in a message: none of them quote the data source, and the password is scrubbed from any text that
would.
"""

from __future__ import annotations

import errno
import getpass
import os
import socket
import ssl
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cfsslpy import migrations
from cfsslpy.errors import Category, CfsslError, Reason, Unavailable

SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")

# Keys lib/pq interprets itself; any other key is a server run-time parameter.
_CLIENT_KEYS = frozenset(
    {
        "host",
        "hostaddr",
        "port",
        "user",
        "password",
        "dbname",
        "sslmode",
        "sslrootcert",
        "sslcert",
        "sslkey",
        "sslsni",
        "sslinline",
        "connect_timeout",
        "application_name",
        "fallback_application_name",
        "binary_parameters",
        "disable_prepared_binary_result",
        "krbsrvname",
        "krbspn",
    }
)

_ENVIRONMENT = {
    "host": "PGHOST",
    "port": "PGPORT",
    "user": "PGUSER",
    "password": "PGPASSWORD",
    "dbname": "PGDATABASE",
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "application_name": "PGAPPNAME",
}

# pg_advisory_xact_lock key serialising schema creation across processes ("cfsslpy" in ASCII, as an int8).
SCHEMA_LOCK = 0x63667373_6C7079


def _error(message: str) -> CfsslError:
    return CfsslError(Category.CERT_STORE, Reason.UNKNOWN, message)


def _unavailable(message: str) -> CfsslError:
    """The server cannot be reached now (the API answers 503): a failed dial, a server shutting down or
    starting up, no connection slot left. Bad credentials or TLS settings stay plain 11000 errors."""
    return Unavailable(Category.CERT_STORE, Reason.UNKNOWN, message)


# SQLSTATEs of a server that is going away or not there yet: admin_shutdown, crash_shutdown,
# cannot_connect_now, too_many_connections
UNAVAILABLE_STATES = frozenset({"57P01", "57P02", "57P03", "53300"})


# -----------------------------------------------------------------------------------------------------------
# data sources


@dataclass(frozen=True)
class DataSource:
    """A parsed data source: where to connect, as whom, and how to secure it."""

    host: str = "localhost"
    port: int = 5432
    user: str = ""
    password: str | None = field(default=None, repr=False)
    dbname: str = ""
    sslmode: str = "require"
    sslrootcert: str = ""
    sslcert: str = ""
    sslkey: str = ""
    connect_timeout: float | None = None
    application_name: str | None = None
    runtime: tuple[tuple[str, str], ...] = ()

    @property
    def unix_socket(self) -> str | None:
        """The socket file when ``host`` is a directory (``/var/run/postgresql/.s.PGSQL.5432``)."""
        if self.host.startswith("/"):
            return os.path.join(self.host, f".s.PGSQL.{self.port}")
        return None


def parse(dsn: str, environ: Mapping[str, str] | None = None) -> DataSource:
    """A lib/pq data source (URL or key/value string), completed from ``PG*`` variables and lib/pq's defaults."""
    env = os.environ if environ is None else environ
    text = dsn.strip()
    opts = _parse_url(text) if text.startswith(("postgres://", "postgresql://")) else _parse_keywords(text)
    for key, var in _ENVIRONMENT.items():
        if key not in opts and env.get(var):
            opts[key] = env[var]
    if "fallback_application_name" in opts and "application_name" not in opts:
        opts["application_name"] = opts["fallback_application_name"]
    host = opts.get("host") or "localhost"
    if "," in host:
        raise _error("multiple hosts in a data source are not supported")
    try:
        port = int(opts.get("port") or 5432)
    except ValueError:
        raise _error(f"invalid port {opts.get('port')!r} in the data source") from None
    if not 0 < port < 65536:
        raise _error(f"invalid port {port} in the data source")
    user = opts.get("user") or _login_name()
    sslmode = opts.get("sslmode") or "require"
    if sslmode not in SSL_MODES:
        raise _error(f'unsupported sslmode "{sslmode}"; only "require" (default), "verify-full", "verify-ca", and "disable" supported')
    timeout: float | None = None
    if opts.get("connect_timeout"):
        try:
            timeout = float(opts["connect_timeout"])
        except ValueError:
            raise _error(f"invalid connect_timeout {opts['connect_timeout']!r} in the data source") from None
        timeout = timeout if timeout > 0 else None  # 0: wait forever (libpq)
    runtime = tuple(sorted((k, v) for k, v in opts.items() if k not in _CLIENT_KEYS))
    return DataSource(
        host=host,
        port=port,
        user=user,
        password=opts.get("password"),
        dbname=opts.get("dbname") or user,
        sslmode=sslmode,
        sslrootcert=opts.get("sslrootcert", ""),
        sslcert=opts.get("sslcert", ""),
        sslkey=opts.get("sslkey", ""),
        connect_timeout=timeout,
        application_name=opts.get("application_name"),
        runtime=runtime,
    )


def _login_name() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry (a container's arbitrary uid): lib/pq fails too
        raise _error("pq: Could not detect default username. Please provide one explicitly") from None


def _parse_url(text: str) -> dict[str, str]:
    """``postgres://[user[:password]@][host][:port][/dbname][?key=value&...]`` (lib/pq's ParseURL)."""
    try:
        url = urllib.parse.urlsplit(text)
        port = url.port
    except ValueError:  # the message would quote the URL, password included
        raise _error("invalid data source URL (bad host or port)") from None
    opts: dict[str, str] = {}
    if url.username:
        opts["user"] = urllib.parse.unquote(url.username)
    if url.password is not None:
        opts["password"] = urllib.parse.unquote(url.password)
    if url.hostname:
        opts["host"] = urllib.parse.unquote(url.hostname)
    if port is not None:
        opts["port"] = str(port)
    dbname = urllib.parse.unquote(url.path.lstrip("/"))
    if dbname:
        opts["dbname"] = dbname
    for key, value in urllib.parse.parse_qsl(url.query, keep_blank_values=True):
        opts[key] = value
    return opts


def _parse_keywords(text: str) -> dict[str, str]:
    """``key=value key='quoted \\' value'`` (lib/pq's parseOpts: whitespace-separated, ``\\`` escapes)."""
    opts: dict[str, str] = {}
    i, n = 0, len(text)
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            return opts
        start = i
        while i < n and text[i] != "=" and not text[i].isspace():
            i += 1
        key = text[start:i]
        while i < n and text[i].isspace():
            i += 1
        if i >= n or text[i] != "=":
            raise _error(f'missing "=" after "{key}" in connection info string')
        i += 1
        while i < n and text[i].isspace():
            i += 1
        value: list[str] = []
        if i < n and text[i] == "'":
            i += 1
            while True:
                if i >= n:
                    raise _error("unterminated quoted string in connection info string")
                ch = text[i]
                if ch == "\\" and i + 1 < n:
                    value.append(text[i + 1])
                    i += 2
                    continue
                i += 1
                if ch == "'":
                    break
                value.append(ch)
        else:
            while i < n and not text[i].isspace():
                if text[i] == "\\" and i + 1 < n:
                    i += 1
                value.append(text[i])
                i += 1
        if not key:
            raise _error("missing key name in connection info string")
        opts[key] = "".join(value)


# -----------------------------------------------------------------------------------------------------------
# TLS


def ssl_context(source: DataSource) -> ssl.SSLContext | bool | None:
    """pg8000's ``ssl_context`` argument for ``source``: ``False`` (clear text), ``None`` (try TLS, fall back,
    no verification) or a context (TLS required)."""
    mode = source.sslmode
    if source.unix_socket is not None or mode in ("disable", "allow"):
        return False
    if mode == "prefer":
        return None
    rootcert = source.sslrootcert or _home_file("root.crt")
    if mode == "require" and not (rootcert and os.path.exists(rootcert)):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # lib/pq's "require": encrypted, the server is not authenticated
    else:  # verify-ca, verify-full, or require with a root certificate file (libpq's compatibility rule)
        try:
            if rootcert and rootcert != "system":
                ctx = ssl.create_default_context(cafile=rootcert)
            else:
                ctx = ssl.create_default_context()
        except (OSError, ssl.SSLError) as exc:
            raise _error(f"could not read root certificate file {rootcert!r}: {_os_text(exc)}") from None
        ctx.check_hostname = mode == "verify-full"
    cert = source.sslcert or _home_file("postgresql.crt")
    if cert and os.path.exists(cert):
        key = source.sslkey or _home_file("postgresql.key") or None
        try:
            ctx.load_cert_chain(cert, key)
        except (OSError, ssl.SSLError) as exc:
            raise _error(f"could not load client certificate {cert!r}: {_os_text(exc)}") from None
    elif source.sslcert:
        raise _error(f"could not read client certificate {source.sslcert!r}: no such file or directory")
    return ctx


def _home_file(name: str) -> str:
    home = os.path.expanduser("~")
    return os.path.join(home, ".postgresql", name) if home and home != "~" else ""


def _os_text(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc)


# -----------------------------------------------------------------------------------------------------------
# connections


def connect(dsn: str, *, environ: Mapping[str, str] | None = None) -> Any:
    """A pg8000 DB-API connection to ``dsn`` (autocommit off); 11000 with the driver's text on failure."""
    source = parse(dsn, environ)
    try:
        import pg8000.dbapi
    except ImportError:
        raise _error("the PostgreSQL driver (pg8000) is not installed") from None
    tls = ssl_context(source)
    sock = _dial(source)
    try:
        conn = pg8000.dbapi.connect(
            source.user,
            host=source.host,
            port=source.port,
            database=source.dbname,
            password=source.password,
            sock=sock,
            ssl_context=tls,
            application_name=source.application_name,
            startup_params=dict(source.runtime) or None,
        )
    except Exception as exc:
        sock.close()
        raise (_unavailable if _went_away(exc) else _error)(_scrub(_connect_message(exc), source.password)) from None
    # connect_timeout covered the startup; queries wait as long as they take. With TLS, pg8000 wrapped our
    # socket into a new one (``_usock``), which is the one to change.
    getattr(conn, "_usock", sock).settimeout(None)
    conn.autocommit = False
    # cfssl's JSON columns come back as their text (as from SQLite), not as Python objects: the certdb
    # decodes them itself, the same way for both drivers.
    for oid in (114, 3802):  # json, jsonb
        conn.register_in_adapter(oid, str)
    return conn


def _dial(source: DataSource) -> socket.socket:
    """The connected socket, with Go's error text on failure (``dial tcp 10.0.0.5:5432: i/o timeout``)."""
    path = source.unix_socket
    if path is not None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(source.connect_timeout)
        try:
            sock.connect(path)
        except OSError as exc:
            sock.close()
            raise _unavailable(f"dial unix {path}: connect: {_dial_reason(exc)}") from None
        return sock
    try:
        sock = socket.create_connection((source.host, source.port), timeout=source.connect_timeout)
    except socket.gaierror as exc:
        raise _unavailable(f"dial tcp: lookup {source.host}: {exc.strerror or 'no such host'}") from None
    except OSError as exc:
        address = f"[{source.host}]" if ":" in source.host else source.host
        reason = _dial_reason(exc)
        raise _unavailable(f"dial tcp {address}:{source.port}: {reason if reason == 'i/o timeout' else 'connect: ' + reason}") from None
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    return sock


def _dial_reason(exc: OSError) -> str:
    if isinstance(exc, TimeoutError) or exc.errno == errno.ETIMEDOUT:
        return "i/o timeout"
    return (exc.strerror or str(exc)).lower()


def _went_away(exc: BaseException) -> bool:
    """The connection startup failed because the server is not there now (a socket error, not a TLS one, or a
    server that is shutting down or starting up), rather than because of what we sent."""
    if server_state(exc) in UNAVAILABLE_STATES:
        return True
    cause = exc.__cause__ or exc.__context__
    return any(isinstance(e, OSError) and not isinstance(e, ssl.SSLError) for e in (exc, cause))


def server_state(exc: BaseException) -> str:
    """The SQLSTATE of a pg8000 server error (``""`` for anything else)."""
    args = getattr(exc, "args", ())
    return str(args[0].get("C", "")) if args and isinstance(args[0], dict) else ""


def _connect_message(exc: BaseException) -> str:
    args = getattr(exc, "args", ())
    if args and isinstance(args[0], dict):  # a server error: {"S": "FATAL", "C": "28P01", "M": "..."}
        return str(args[0].get("M", "server error"))
    cause = exc.__cause__ or exc.__context__
    if isinstance(exc, ssl.SSLError) or isinstance(cause, ssl.SSLError):
        err = exc if isinstance(exc, ssl.SSLError) else cause
        return f"tls: {getattr(err, 'verify_message', None) or getattr(err, 'reason', None) or err}"
    if isinstance(exc, TimeoutError) or isinstance(cause, TimeoutError):
        return "i/o timeout during the connection startup"
    text = str(exc) or type(exc).__name__
    if cause is not None and str(cause):
        text = f"{text}: {cause}"
    return text


def _scrub(text: str, password: str | None) -> str:
    if password:
        text = text.replace(password, "***")
    return text


# -----------------------------------------------------------------------------------------------------------
# schema


def ensure_schema(conn: Any) -> None:
    """Apply the schema migrations the database lacks (:func:`cfsslpy.migrations.migrate_postgres`), then
    commit. Processes starting together serialise on the advisory lock :data:`SCHEMA_LOCK`; a database whose
    migrations are all recorded is only read, so a role without CREATE rights (a read-only ``ocspserve``) can
    use a database that goose or an administrator set up."""
    migrations.migrate_postgres(conn, lock_key=SCHEMA_LOCK)
