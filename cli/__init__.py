"""Click commands: each parses options, calls one core function, renders."""
