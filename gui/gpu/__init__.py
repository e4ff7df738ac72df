"""One GPU and its surroundings: detail panel, node view, fleet trends, time ranges, history queries."""
