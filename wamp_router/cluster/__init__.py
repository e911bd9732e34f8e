"""Running one realm on several router processes (the Redis backplane)."""
