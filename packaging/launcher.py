"""Entry script for the PyInstaller build: start the viewer."""

import sys

from sleepviewer.app import main

if __name__ == "__main__":
    sys.exit(main())
