"""arq workers: periodic maintenance now; batch queries and exports in later releases."""
