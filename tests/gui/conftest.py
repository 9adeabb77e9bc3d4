"""GUI tests run offscreen (set before Qt is imported)."""

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"
