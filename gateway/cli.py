"""identity-gateway: serve, create-admin, export-schema, export-permissions."""

from __future__ import annotations

import argparse
import asyncio
import sys

from gateway.config import ConfigurationError, Settings


def _configure_logging(level: str, fmt: str = "text", *, production: bool = False) -> None:
    """JSON or text lines on stderr, each with the request id, secrets blanked (gateway/observability.py)."""
    from gateway.observability import configure_logging

    configure_logging(level, fmt, production=production)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from gateway.app import create_app

    settings = Settings()
    _configure_logging(settings.log_level, settings.effective_log_format, production=settings.is_production)
    try:
        app = create_app(settings)
    except ConfigurationError as exc:
        print(f"identity-gateway: {exc}", file=sys.stderr)
        return 2
    # log_config=None: uvicorn's own loggers (errors, access) go through the handler configured above.
    uvicorn.run(app, host=args.host, port=args.port, log_level=settings.log_level.lower(), log_config=None,
                proxy_headers=False, server_header=False)
    return 0


async def _create_admin(email: str, password: str, role: str) -> int:
    from gateway.runtime import Runtime
    from resolvers.admins import create_admin
    from resolvers.context import RequestMeta
    from resolvers.errors import DomainError, InvalidInput, PasswordPolicyViolation

    runtime = Runtime(Settings())
    await runtime.start()
    try:
        ctx = await runtime.context(client_id=None, principal=None, request=RequestMeta(user_agent="identity-gateway cli"))
        admin = await create_admin(ctx, email, password, role)
    except InvalidInput as exc:
        for problem in exc.problems:
            print(f"identity-gateway: {problem.field}: {problem.message}", file=sys.stderr)
        return 1
    except PasswordPolicyViolation as exc:
        print("identity-gateway: password: " + "; ".join(exc.reasons), file=sys.stderr)
        return 1
    except DomainError as exc:
        print(f"identity-gateway: {exc.message}", file=sys.stderr)
        return 1
    finally:
        await runtime.stop()
    print(f"created admin {admin.email} ({admin.role}) with id {admin.id}")
    return 0


def cmd_create_admin(args: argparse.Namespace) -> int:
    if not args.password_stdin:
        print("identity-gateway: pass the password on standard input with --password-stdin", file=sys.stderr)
        return 2
    password = sys.stdin.readline().rstrip("\r\n")
    _configure_logging("WARNING")
    return asyncio.run(_create_admin(args.email, password, args.role))


def cmd_export_schema(args: argparse.Namespace) -> int:
    from schema.root import build_schema

    sys.stdout.write(build_schema().as_str() + "\n")
    return 0


def cmd_export_permissions(args: argparse.Namespace) -> int:
    from schema.admins import permissions_markdown
    from schema.root import build_schema

    sys.stdout.write(permissions_markdown(build_schema()))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="identity-gateway", description="GraphQL identity gateway")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the gateway (embedded database unless GATEWAY_MONGODB_URI is set)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(func=cmd_serve)

    admin = sub.add_parser("create-admin", help="create an administrator")
    admin.add_argument("--email", required=True)
    admin.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    admin.add_argument("--role", default="owner", help="owner, admin, support or viewer")
    admin.set_defaults(func=cmd_create_admin)

    export = sub.add_parser("export-schema", help="print the GraphQL SDL")
    export.set_defaults(func=cmd_export_schema)

    permissions = sub.add_parser("export-permissions", help="print docs/permissions.md (roles and fields)")
    permissions.set_defaults(func=cmd_export_permissions)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
