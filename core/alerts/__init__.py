"""Alerting: rules evaluated over whole fleet samples, alert lifecycle, silences, notifications
and forwarding to a Prometheus Alertmanager. Headless; the console and `gpuops collect` drive it
through `core.alerts.service.AlertService`."""
