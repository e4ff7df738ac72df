"""`gpuops agent`: serve one node's GPUs as dcgm-exporter-compatible Prometheus metrics."""
