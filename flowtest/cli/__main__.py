"""`python -m flowtest.cli`, as the tests and benchmarks start it."""

import sys

from flowtest.cli import main

sys.exit(main())
