"""Worker process for large catalog scans: reads (storage, locations) as a pickle on
stdin, writes the check results as a pickle on stdout. Started by scan._check_all."""

from __future__ import annotations

import pickle
import sys

from quantbot.artifacts.catalog.scan import _check_threads


def main() -> None:
    storage, locations = pickle.load(sys.stdin.buffer)
    pickle.dump(_check_threads(storage, locations), sys.stdout.buffer,
                protocol=pickle.HIGHEST_PROTOCOL)


if __name__ == "__main__":
    main()
