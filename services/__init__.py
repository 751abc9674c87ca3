"""The deployable processes of the platform, one folder each."""
