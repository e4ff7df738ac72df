"""The fleet grid: layout, arrangement, metrics, colours and marks."""
