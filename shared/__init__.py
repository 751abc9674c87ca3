"""Library code that two or more services use: settings, model, Kafka, PostgreSQL."""
