"""`python -m mash`."""

from mash.cli import main

main()
