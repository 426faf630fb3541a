"""``python -m bench``: every scenario (or ``--only a,b``), then results/latest.json, plots and the summary."""

from bench.core.main import run_all

if __name__ == "__main__":
    run_all()
