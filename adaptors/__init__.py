"""Adaptors: the operations a job can use, one package each.

Each adaptor is registered under the ``openfn.adaptors`` entry-point group and
lists its operations in ``__all__``; ``shared.adaptors`` finds and loads them.
"""
