"""`python -m personsearch.cli ...` (e.g. under `torchrun -m`)."""

import sys

from . import main

sys.exit(main())
