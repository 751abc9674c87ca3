"""The inbox gateway: receives messages over HTTP and makes them durable in Kafka."""
