"""The recorder: writes messages and runs into PostgreSQL and derives job states.

It is the only writer of the history tables; the API only reads them.
"""
