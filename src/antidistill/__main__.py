from __future__ import annotations

from antidistill.cli import main

main()
