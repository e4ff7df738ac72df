"""Telemetry sources: nvml (local GPUs), demo (simulated fleet), and the factory that picks one."""
