"""`python -m redis_harness.cli`."""

import sys

from redis_harness.cli import main

sys.exit(main())
