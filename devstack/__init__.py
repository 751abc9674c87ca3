"""Real servers for the local stack and tests: Kafka protocol, Vault API, PostgreSQL.

Nothing here runs in production; production points the services at existing
servers through settings.
"""
