"""`python -m tpcloud` runs the command line."""

from tpcloud.cli import main

main()
