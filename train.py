"""``python train.py ...`` is ``python -m recommender.pipeline ...``: the trainer's familiar name.

See ``recommender/pipeline/cli.py`` for the flags, or run ``python train.py --help``.
"""

import sys

from recommender.pipeline.cli import entry

if __name__ == "__main__":
    sys.exit(entry())
