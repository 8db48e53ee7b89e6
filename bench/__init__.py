"""Benchmarks of jobrelay, each measured side by side with a baseline of the parts it is made of,
in the same run: `python -m bench [--quick]`. See docs/PERFORMANCE.md for the figures.

A benchmark module offers `async def run(ctx: bench.context.Context) -> list[bench.report.Row]`.
"""
