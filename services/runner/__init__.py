"""The runner: takes run requests, runs each job in a child process, reports runs."""
