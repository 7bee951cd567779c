"""One router per resource: predict, alerts, model, health, metrics."""
