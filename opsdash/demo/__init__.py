"""The built-in demo platform (``opsdash demo``): services, workers and a story, on loopback."""
