"""``python -m posbench.cli``."""
from posbench.cli import main

main()
