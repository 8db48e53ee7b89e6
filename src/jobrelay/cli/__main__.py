"""`python -m jobrelay.cli`, the same as the `jobrelay` script."""

from jobrelay.cli.app import main

main()
