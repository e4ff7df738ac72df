"""Small pieces every feature shares: the clock text, palettes, a sortable rows model."""
