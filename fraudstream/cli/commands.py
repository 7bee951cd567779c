"""Wires every command module into the root app. Modules import their component inside the command body."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    from fraudstream.cli import alerts, config, data, demo, kafka, model, monitor, serve, stream, train

    app.add_typer(kafka.app, name="kafka")
    app.add_typer(data.app, name="data")
    app.add_typer(alerts.app, name="alerts")
    train.register(app)
    model.register(app)
    monitor.register(app)
    stream.register(app)
    serve.register(app)
    demo.register(app)
    config.register(app)
