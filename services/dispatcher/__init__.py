"""The dispatcher: matches messages against message-filter triggers and asks for runs."""
