"""acseg desktop app (PySide6): thin views over small observable models."""
