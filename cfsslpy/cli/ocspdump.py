"""``ocspdump``: print every unexpired OCSP response in the certdb, one base64 line each."""

from __future__ import annotations

from cfsslpy.cli.command import ArgumentError, Command, Options
from cfsslpy.cli.common import no_more_args, open_certdb
from cfsslpy.cli.context import IO
from cfsslpy.ocsp import dump


class OcspdumpOptions(Options):
    db_config: str


def run(opts: OcspdumpOptions, args: list[str], io: IO) -> int:
    no_more_args(args)
    if not opts.db_config:
        raise ArgumentError("need DB config file (provide with -db-config)")
    with open_certdb(opts.db_config, io) as db:
        text = dump(db)
    io.out(text)
    return 0


COMMAND = Command(
    name="ocspdump",
    summary="generates a series of concatenated OCSP responses for use with ocspserve from all OCSP responses in the cert db",
    usage="cfsslpy ocspdump -db-config db-config",
    options=OcspdumpOptions,
    example="cfsslpy ocspdump -db-config db.json > responses && cfsslpy ocspserve -responses responses",
    run=run,
    description="Print each unexpired response of the ocsp_responses table as one line of standard base64: the\n"
    "format ocspserve -responses reads.",
)
