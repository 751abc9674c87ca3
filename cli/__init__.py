"""The ``openfn`` command: run the local stack, deploy projects, prepare servers."""
