"""Deprecated: ``python -m zcnas.integration.nni_trial`` is now ``python -m zcnas.cli.nni_trial``
(kept for one release, for NNI experiment configs that name it)."""

import sys
import warnings

from zcnas.cli.nni_trial import main


if __name__ == "__main__":  # pragma: no cover
    warnings.warn("run `python -m zcnas.cli.nni_trial` instead of zcnas.integration.nni_trial",
                  DeprecationWarning, stacklevel=1)
    sys.exit(main())
