"""The dispatcher: matches messages against message filters and asks for runs."""
