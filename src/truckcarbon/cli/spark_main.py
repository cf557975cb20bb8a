"""Entry point for ``spark-submit``: the pipeline on the Spark engine, with the cluster's master.

    spark-submit --master yarn --deploy-mode client \\
        $(python -c "import truckcarbon.cli.spark_main as m; print(m.__file__)") \\
        --pings hdfs-mounted/pings --vehicles vehicles.parquet --out /shared/run [--months 2023-03]

The master comes from ``spark-submit``; the options are those of ``truckcarbon run``.
"""

from __future__ import annotations

import sys

from truckcarbon.cli.main import app


def main() -> None:
    """``truckcarbon run --engine spark`` with the command-line arguments given to spark-submit."""
    app(["run", "--engine", "spark", *sys.argv[1:]])


if __name__ == "__main__":
    main()
