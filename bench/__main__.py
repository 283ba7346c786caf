"""``python -m bench``: the side-by-side run of ``bench/peers.py``."""

from bench.peers import main

main()
