"""The benchmark suite of issue 7: `python -m bench.run [--quick] [--only NAME]`.

Not part of the test run. Each benchmark module exposes ``run(options) -> list[Row]``; the
measured work runs in fresh subprocesses started by ``bench.common.run_child``.
"""
