"""``python -m acseg_core`` is ``acseg-core``."""

from acseg_core.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
