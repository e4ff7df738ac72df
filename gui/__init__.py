"""Qt views of gpuops. Widgets never call NVML, SQLite or the network: workers do."""
