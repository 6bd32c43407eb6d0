# interop: the sluiced program itself (command line, lock, reload, shutdown).
TESTS += tests/interop/test-sluiced.py
EXTRA_DIST += tests/interop/test-sluiced.py
