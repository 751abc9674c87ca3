"""The API: deploys projects, reads messages, runs and job states, and starts
re-runs, reprocessing and cron jobs on demand (JSON, OpenAPI)."""
