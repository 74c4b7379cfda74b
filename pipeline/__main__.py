"""``python -m pipeline`` is the ``basket`` command."""

from pipeline.cli import main

main(prog_name="basket")
