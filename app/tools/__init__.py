"""Hand-correction tools: footprints (``shapes``), the edits view (``edits_item``), tools."""
