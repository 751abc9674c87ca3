"""The API: deploys projects and reads messages, runs and job states (JSON, OpenAPI)."""
