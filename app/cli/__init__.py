"""``ntm``: the command-line client of the service (Typer for the commands, Rich for output).

Modules: ``credentials`` (where ``ntm login`` keeps the server URL and token),
``client`` (the HTTP calls and their errors), ``live`` (progress over the
WebSocket, or SSE), ``main`` (the commands). It talks to the public API only.
"""
