"""Lambda handlers of the cloud pipeline (thin: parse, one domain call, return)."""
