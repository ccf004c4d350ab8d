"""Runtime of the identity gateway: settings, ASGI app, routes, auth, mail, database, CLI."""
