"""``python -m recommender.pipeline``: train, evaluate or manage model versions (see ``cli``)."""

import sys

from recommender.pipeline.cli import entry

sys.exit(entry())
