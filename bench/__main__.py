"""``python -m bench`` (``make bench``): every speed target against its reference, in one run;
``--quick`` for fewer runs and scale points. The single-topic benchmarks beside it run on their
own (``python -m bench.http_round`` ...; see bench/README.md)."""

from bench.targets import main

main()
