"""The `flowsync` command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import unicodedata
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TypeVar

from pydantic import ValidationError

from flowsync.config import Settings, describe_invalid
from flowsync.errors import FlowSyncError, Problem
from flowsync.logs import configure_logging

T = TypeVar("T")
log = logging.getLogger("flowsync")


def _settings() -> Settings:
    return Settings()


def _migrate(settings: Settings, url: str) -> None:
    """Upgrade the schema at `url`, once the server answers and accepts writes: a URL that
    does not parse, a server that does not answer or a database that does not exist is
    one ConfigurationError naming the setting (as `serve` and `worker` say it), not a
    traceback from the migration tool."""
    from flowsync.db.migrate import upgrade
    from flowsync.db.preflight import check_writable

    check_writable(settings, url)
    upgrade(url)


def _with_services(settings: Settings, fn: Callable[..., Awaitable[T]]) -> T:
    """Run `fn(services)` against a migrated database, then release everything."""
    from flowsync.runtime import database_url
    from flowsync.services.container import build_services

    with database_url(settings) as url:
        _migrate(settings, url)

        async def run() -> T:
            services = await build_services(settings, url)
            try:
                return await fn(services)
            finally:
                await services.close()

        return asyncio.run(run())


def _print_problems(problems: Sequence[Problem]) -> None:
    """One line per problem: its JSON path, the node and edge it is about (as the API's
    `nodeId` and `edge`), and what is wrong."""
    for problem in problems:
        where = [f"node {problem.node_id}"] if problem.node_id is not None else []
        where += [f"edge {problem.edge}"] if problem.edge is not None else []
        named = f" ({', '.join(where)})" if where else ""
        print(f"  {problem.path}{named}: {problem.message}", file=sys.stderr)


def cmd_migrate(args: argparse.Namespace) -> int:
    from flowsync.runtime import database_url

    settings = _settings()
    with database_url(settings) as url:
        _migrate(settings, url)
    print("The database schema is up to date.")
    return 0


def read_at_most(path: Path, limit: int) -> bytes | None:
    """The file's bytes, or None when it holds more than `limit`: read no further, so that
    a huge file (or /dev/zero) is refused, not loaded whole until memory runs out (found
    by QA: a MemoryError traceback, or minutes of swapping first). OSError as `open`."""
    with path.open("rb") as file:
        data = file.read(limit + 1)
    return None if len(data) > limit else data


def cmd_validate(args: argparse.Namespace) -> int:
    from flowsync.engine.validation import parse_definition_bytes, validate_workflow_document

    path = Path(args.file)
    limit = _settings().max_definition_bytes
    try:
        data = read_at_most(path, limit)
    except OSError as exc:
        print(f"{path}: cannot read: {exc.strerror}", file=sys.stderr)
        return 2
    if data is None:
        print(
            f"{path}: the file is over the limit of {limit} bytes (FLOWSYNC_MAX_DEFINITION_BYTES)",
            file=sys.stderr,
        )
        return 1
    try:
        raw = parse_definition_bytes(data, max_bytes=limit)
        # A bare definition ({"nodes", "edges"}) is accepted as well as a whole document.
        if isinstance(raw, dict) and "definition" not in raw and "nodes" in raw:
            from flowsync.engine.validation import validate_definition

            validate_definition(raw)
        else:
            validate_workflow_document(raw)
    except FlowSyncError as exc:
        print(f"{path}: {exc.message}", file=sys.stderr)
        _print_problems(exc.details)
        return 1
    print(f"{path}: valid")
    return 0


# The CLI's owners are `local:<name>`; `flowsync dev`'s key belongs to `local:dev`.
LOCAL_OWNER_PREFIX = "local:"
MAX_OWNER_LENGTH = 500


def cmd_api_keys(args: argparse.Namespace) -> int:
    from flowsync.services.container import Services
    from flowsync.services.principal import Principal

    name = args.owner.removeprefix(LOCAL_OWNER_PREFIX)
    subject = LOCAL_OWNER_PREFIX + name

    async def run(services: Services) -> int:
        owner = await services.api_keys.ensure_owner(subject, name)
        principal = Principal(owner_id=owner, actor="cli")
        if args.action == "create":
            issued = await services.api_keys.create(principal, args.name, args.role)
            print(f"id:     {issued.key.id}\nowner:  {subject}\nrole:   {issued.key.role}")
            print(f"key:    {issued.secret}")
            print("Store the key now: it is not shown again.", file=sys.stderr)
        elif args.action == "list":
            for key in await services.api_keys.list(principal):
                state = "revoked" if key.revoked_at else "active"
                print(
                    f"{key.id}  {key.prefix}…  {state:7}  {key.role:8}  "
                    f"{key.created_at:%Y-%m-%d}  {key.name}"
                )
        else:
            key = await services.api_keys.revoke(principal, args.key_id)
            print(f"revoked {key.id}")
        return 0

    return _with_services(_settings(), run)


def cmd_members(args: argparse.Namespace) -> int:
    """`flowsync members list|add|set|remove`: a team's members (JWT subjects) and their
    roles, as its admin. A refusal (an unknown role, the last admin) changes nothing."""
    from flowsync.services.container import Services
    from flowsync.services.principal import Principal

    async def run(services: Services) -> int:
        # The api-keys command's names (NAME or local:NAME), or a JWT's team as stored.
        subject = (
            args.owner
            if "|" in args.owner
            else LOCAL_OWNER_PREFIX + args.owner.removeprefix(LOCAL_OWNER_PREFIX)
        )
        owner = await services.api_keys.ensure_owner(subject, subject)
        principal = Principal(owner_id=owner, actor="cli")
        if args.action == "list":
            for m in await services.members.list(principal):
                print(f"{m.role:8}  {m.subject}  (added by {m.added_by}, {m.created_at:%Y-%m-%d})")
            return 0
        if args.action == "add":
            row = await services.members.add(principal, args.subject, args.role)
        elif args.action == "set":
            row = await services.members.set_role(principal, args.subject, args.role)
        else:
            row = await services.members.remove(principal, args.subject)
            print(f"removed {row.subject} ({row.role})")
            return 0
        print(f"{row.subject}: {row.role}")
        return 0

    return _with_services(_settings(), run)


def _secret_settings() -> Settings:
    """The settings for `flowsync secrets`: next to `flowsync dev` (no database URL, no
    key configured) the key `dev` keeps in its data folder."""
    from flowsync.secrets_crypto import ensure_dev_secret_key

    settings = _settings()
    return settings if settings.database_url else ensure_dev_secret_key(settings)


def _read_secret_value(args: argparse.Namespace) -> str:
    """The value from --value-file, else standard input; one trailing newline dropped
    (as `echo` and editors add one). Never an argument: it would show in `ps` and shell
    history."""
    from flowsync.errors import InvalidInput
    from flowsync.services.secrets import MAX_SECRET_BYTES

    # Read no further than the limit allows (with room for the newline that is dropped).
    limit = MAX_SECRET_BYTES + 2
    try:
        if args.value_file is not None:
            raw = read_at_most(Path(args.value_file), limit)
        else:
            if sys.stdin.isatty():
                print("Type the value, then Ctrl-D:", file=sys.stderr)
            raw = sys.stdin.buffer.read(limit + 1)
            raw = None if len(raw) > limit else raw
        if raw is None:
            where = args.value_file or "standard input"
            raise InvalidInput(
                f"{where}: the value is over the limit of {MAX_SECRET_BYTES:,} bytes.",
                [Problem("value", f"at most {MAX_SECRET_BYTES:,} bytes of UTF-8")],
            )
        text = raw.decode("utf-8")
    except OSError as exc:
        raise InvalidInput(
            f"{args.value_file}: cannot read: {exc.strerror}",
            [Problem("value", f"cannot read {args.value_file}")],
        ) from None
    except UnicodeDecodeError:
        raise InvalidInput(
            "The value is not UTF-8 text.", [Problem("value", "not UTF-8 text")]
        ) from None
    return text.removesuffix("\n").removesuffix("\r")


def cmd_secrets(args: argparse.Namespace) -> int:
    from flowsync.services.container import Services
    from flowsync.services.principal import Principal

    settings = _secret_settings()
    if args.action == "rotate-key":

        async def rotate(services: Services) -> int:
            count = await services.secrets.rotate_key()
            key = services.secrets.keyring.require()
            print(f"{count} secret(s) encrypted again with key {key.id}")
            return 0

        return _with_services(settings, rotate)
    name = args.owner.removeprefix(LOCAL_OWNER_PREFIX)
    subject = LOCAL_OWNER_PREFIX + name
    value = _read_secret_value(args) if args.action == "set" else None

    async def run(services: Services) -> int:
        owner = await services.api_keys.ensure_owner(subject, name)
        principal = Principal(owner_id=owner, actor="cli")
        if args.action == "set":
            assert value is not None
            info = await services.secrets.set(principal, args.name, value)
            print(f"set {info.name} (owner {subject})")
        elif args.action == "list":
            for info in await services.secrets.list(principal):
                print(f"{info.name}  updated {info.updated_at:%Y-%m-%d %H:%M:%S}  by {info.set_by}")
        else:
            info = await services.secrets.delete(principal, args.name)
            print(f"deleted {info.name}")
        return 0

    return _with_services(settings, run)


def cmd_graphql_register(args: argparse.Namespace) -> int:
    """Add the operations of `.graphql` files to the safelist: all or none (a file that
    cannot be read or parsed, or an operation the schema refuses, writes nothing)."""
    from flowsync.schema.safelist import (
        RegisterError,
        operations_of,
        read_manifest,
        write_manifest,
    )

    settings = _settings()
    target: Path | None = args.safelist or settings.graphql_safelist
    if target is None:
        print(
            "error: say where the safelist is: --safelist PATH or FLOWSYNC_GRAPHQL_SAFELIST",
            file=sys.stderr,
        )
        return 2
    try:
        found = operations_of([Path(f) for f in args.files], settings)
    except RegisterError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        print(f"nothing was registered; {target} is unchanged", file=sys.stderr)
        return 1
    # A malformed safelist is a ConfigurationError, reported by main; nothing is written.
    listed = read_manifest(target) if target.exists() else []
    ids = {op.id for op in listed}
    names = {op.name for op in listed}
    added = [op for op in found if op.id not in ids]
    for op in found:
        if op.id in ids:
            state = "already registered"
        elif op.name in names:
            state = "registered (beside another version of this name)"
        else:
            state = "registered"
        print(f"{op.id}  {op.type} {op.name}: {state}")
    if added:
        write_manifest(target, [*listed, *added])
    print(f"{target}: {len(listed) + len(added)} listed, {len(added)} new")
    return 0


def cmd_dev(args: argparse.Namespace) -> int:
    from flowsync.server import run_dev

    settings = _settings()
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    if overrides:
        settings = settings.model_copy(update=overrides)
    return run_dev(settings, _dev_log_file(settings))


def _dev_log_file(settings: Settings) -> Path:
    from flowsync.server import DEV_LOG_FILE

    return settings.data_dir.expanduser() / DEV_LOG_FILE


def cmd_serve(args: argparse.Namespace) -> int:
    from flowsync.serving import run_serve

    settings = _settings()
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    if overrides:
        settings = settings.model_copy(update=overrides)
    return run_serve(settings, args.workers)


def cmd_worker(args: argparse.Namespace) -> int:
    from flowsync.server import run_worker

    settings = _settings()
    if args.metrics_port is not None:
        settings = settings.model_copy(update={"worker_metrics_port": args.metrics_port})
    return run_worker(settings, args.concurrency or settings.worker_concurrency)


def cmd_prune(args: argparse.Namespace) -> int:
    from flowsync.retention.report import prune_once

    return prune_once(_settings(), dry_run=args.dry_run)


def _port(text: str) -> int:
    if not text.isascii() or not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (0 to 65535)")
    return int(text)


def _concurrency(text: str) -> int:
    # 0 used to mean the default (16) silently, and a negative number ran a worker that
    # never claimed a step.
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= 1000:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of steps (1 to 1000)")
    return int(text)


def _text(text: str) -> str:
    """An argument that is stored or looked up: UTF-8 text (a byte that is not, which
    Python keeps as a lone surrogate, made the database driver's traceback)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        shown = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        raise argparse.ArgumentTypeError(f"'{shown}' is not UTF-8 text") from None
    return text


def _owner(text: str) -> str:
    """An owner: NAME, local:NAME, or a JWT team as stored; never blank (`--owner ""`
    made an owner `local:` with no name)."""
    text = _text(text)
    if not text.removeprefix(LOCAL_OWNER_PREFIX).strip():
        raise argparse.ArgumentTypeError(f"{text!r} names no owner; give NAME or local:NAME")
    # As a member's subject: bounded, and no control character (a line break or an
    # escape sequence in an owner is shown by every list, log line and audit entry).
    if len(text) > MAX_OWNER_LENGTH:
        raise argparse.ArgumentTypeError(
            f"{text[:40]!r}… is {len(text)} characters; an owner is at most {MAX_OWNER_LENGTH}"
        )
    if any(unicodedata.category(c) == "Cc" for c in text):
        raise argparse.ArgumentTypeError(f"{text!r} holds a control character")
    return text


def _processes(text: str) -> int:
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= 256:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of processes (1 to 256)")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flowsync", description="Durable workflow orchestration on PostgreSQL."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    # Every command that logs takes --verbose: the whole log on the terminal.
    verbose = argparse.ArgumentParser(add_help=False)
    verbose.add_argument(
        "--verbose", "-v", action="store_true", help="show every log line (libraries' too)"
    )

    p = sub.add_parser(
        "migrate", parents=[verbose], help="upgrade the database schema to the newest version"
    )
    p.set_defaults(fn=cmd_migrate)

    p = sub.add_parser("validate", help="validate a workflow JSON file; exit 1 when invalid")
    p.add_argument("file")
    p.set_defaults(fn=cmd_validate)

    p = sub.add_parser("api-keys", help="create, list and revoke API keys")
    keys = p.add_subparsers(dest="action", required=True)
    for action in ("create", "list", "revoke"):
        kp = keys.add_parser(action, parents=[verbose])
        kp.add_argument(
            "--owner",
            type=_owner,
            default="dev",
            help="the owner: NAME or local:NAME, the same (default: dev, whose key "
            "`flowsync dev` prints)",
        )
        if action == "create":
            kp.add_argument("--name", type=_text, default="cli", help="a label for the key")
            kp.add_argument(
                "--role",
                type=_text,
                default=None,
                help="viewer, operator, editor or admin (default: admin, the CLI's own)",
            )
        if action == "revoke":
            kp.add_argument("key_id", type=_text)
        kp.set_defaults(fn=cmd_api_keys)

    p = sub.add_parser("members", help="list, add, change and remove a team's members")
    member_actions = p.add_subparsers(dest="action", required=True)
    for action in ("list", "add", "set", "remove"):
        mp = member_actions.add_parser(action, parents=[verbose])
        mp.add_argument(
            "--owner",
            type=_owner,
            required=True,
            help="the team: NAME or local:NAME as for api-keys, <issuer>|<sub> for a JWT "
            "subject's own, <issuer>|org:<id> for a JWT team",
        )
        if action != "list":
            mp.add_argument("subject", type=_text, help="the member: jwt:<issuer>|<sub>")
        if action in ("add", "set"):
            mp.add_argument("role", type=_text, help="viewer, operator, editor or admin")
        mp.set_defaults(fn=cmd_members)
    p = sub.add_parser(
        "secrets",
        help="set, list and delete an owner's secrets; encrypt them all again with a new key",
    )
    secret_actions = p.add_subparsers(dest="action", required=True)
    for action in ("set", "list", "delete", "rotate-key"):
        sp = secret_actions.add_parser(action, parents=[verbose])
        if action != "rotate-key":
            sp.add_argument("--owner", type=_owner, default="dev",
                            help="the owner: NAME or local:NAME (default: dev)")  # fmt: skip
        if action in ("set", "delete"):
            sp.add_argument("name", type=_text, help="the secret's name (letters, digits, _)")
        if action == "set":
            sp.add_argument(
                "--value-file",
                help="read the value from this file (default: standard input); one "
                "trailing newline is dropped",
            )
        if action == "rotate-key":
            sp.description = (
                "Encrypt every stored secret again with FLOWSYNC_SECRET_KEY; secrets under "
                "the old key need it in FLOWSYNC_SECRET_PREVIOUS_KEY. One transaction."
            )
        sp.set_defaults(fn=cmd_secrets)

    p = sub.add_parser("graphql", help="the GraphQL safelist (FLOWSYNC_GRAPHQL_SAFELIST)")
    graphql = p.add_subparsers(dest="action", required=True)
    gp = graphql.add_parser(
        "register",
        help="validate the operations of .graphql files against the schema and add them to "
        "the safelist; on any problem nothing is written (exit 1)",
    )
    gp.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="a .graphql file with one or more named operations; fragments may live in any "
        "of the files",
    )
    gp.add_argument(
        "--safelist",
        type=Path,
        help="the manifest to add to (default: FLOWSYNC_GRAPHQL_SAFELIST; made if missing)",
    )
    gp.set_defaults(fn=cmd_graphql_register)

    p = sub.add_parser(
        "dev",
        parents=[verbose],
        help="embedded database, migrations and the server, in one process; the detail of "
        "the log goes to FLOWSYNC_DATA_DIR/logs/dev.log unless --verbose",
    )
    p.add_argument("--host", type=_text)
    p.add_argument("--port", type=_port)
    p.set_defaults(fn=cmd_dev)

    p = sub.add_parser(
        "serve",
        parents=[verbose],
        help="the HTTP API (GraphQL, REST, webhooks, /metrics) until SIGTERM, no worker; "
        "needs FLOWSYNC_DATABASE_URL at a migrated database (`flowsync migrate`)",
    )
    p.add_argument(
        "--host", type=_text, help="the address to listen on (default FLOWSYNC_HOST, 127.0.0.1)"
    )
    p.add_argument("--port", type=_port, help="the port (default FLOWSYNC_PORT, 8000)")
    p.add_argument(
        "--workers",
        type=_processes,
        default=1,
        help="API processes sharing the port (default 1)",
    )
    p.set_defaults(fn=cmd_serve)

    p = sub.add_parser("worker", parents=[verbose], help="run steps until SIGTERM")
    p.add_argument(
        "--concurrency", type=_concurrency, help="steps run at once, 1 to 1000 (default 16)"
    )
    p.add_argument(
        "--metrics-port",
        type=_port,
        help="serve this worker's metrics at http://127.0.0.1:PORT/metrics (0: a free port, "
        "logged); needs FLOWSYNC_METRICS_TOKEN",
    )
    p.set_defaults(fn=cmd_worker)

    p = sub.add_parser(
        "prune",
        parents=[verbose],
        help="delete the history past its FLOWSYNC_RETAIN_* window now (workers also do "
        "this periodically)",
    )
    p.add_argument("--dry-run", action="store_true", help="say what would go; delete nothing")
    p.set_defaults(fn=cmd_prune)
    return parser


def _configure_logging(settings: Settings, args: argparse.Namespace) -> None:
    """`dev`, `migrate` and `api-keys` show progress lines and warnings (`dev` writes the
    rest to its log file); `worker` logs everything, as a service does; `--verbose` shows
    everything, libraries' detail too."""
    verbose = bool(getattr(args, "verbose", False))
    if args.command in ("worker", "serve"):
        configure_logging(settings, verbose=verbose)
    elif args.command == "dev":
        log_file = _dev_log_file(settings)
        configure_logging(settings, console="progress", verbose=verbose, log_file=log_file)
    else:
        configure_logging(settings, console="progress", verbose=verbose)


def _report(settings: Settings, exc: FlowSyncError) -> None:
    """An error that ends a command: a line per problem, or one JSON log line."""
    if settings.log_format == "json":
        extra: dict[str, object] = {"code": exc.code}
        if exc.details:
            extra["details"] = [p.as_dict() for p in exc.details]
        log.error("%s", exc.message, extra=extra)
        return
    print(f"error: {exc.message}", file=sys.stderr)
    _print_problems(exc.details)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `flowsync` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        for line in describe_invalid(exc):
            print(f"error: {line}", file=sys.stderr)
        return 2
    _configure_logging(settings, args)
    try:
        status: int = args.fn(args)
    except FlowSyncError as exc:
        _report(settings, exc)
        return 1
    except KeyboardInterrupt:
        return 130
    return status


if __name__ == "__main__":
    sys.exit(main())
