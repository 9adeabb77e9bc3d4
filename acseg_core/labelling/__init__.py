"""Labelling: classes and palettes, hand edits with undo, tool shapes, projects, and
the export of label masks."""
